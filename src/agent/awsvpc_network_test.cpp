// The awsvpc network: pure nft scripts, rules and state, then real namespaces, veths, routes
// and nftables rules (as root; skipped elsewhere), with attach and detach times measured.
#include "agent/awsvpc_network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#include "agent/network.hpp"
#include "agent/rtnetlink.hpp"
#include "agent/test_commands.hpp"

namespace wharf::agent {
namespace {

// Whether a network's state file (either slot) is still there.
bool state_left(const std::filesystem::path& path) {
  auto text = StateFile(path).read();
  return !text || text->has_value();
}

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

AwsvpcOptions sample_options() {
  AwsvpcOptions options;
  options.nft_table = "wharfvpc_t1";
  options.netns_prefix = "wv-t1-";
  options.veth_prefix = "wv";
  options.state_file = "/tmp/unused.json";
  return options;
}

AwsvpcEndpoint sample_endpoint(std::vector<IngressRule> ingress) {
  AwsvpcEndpoint endpoint;
  endpoint.id = "task1";
  endpoint.netns_path = "/run/netns/wv-t1-task1";
  endpoint.ip = "172.31.0.7";
  endpoint.mac = "02:42:ac:1f:00:07";
  endpoint.host_veth = "wv0123456789abc";
  endpoint.ingress = std::move(ingress);
  return endpoint;
}

std::vector<std::string> script_lines(const std::string& script) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < script.size()) {
    std::size_t end = script.find('\n', start);
    lines.push_back(script.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// ---- Pure parts ------------------------------------------------------------------------------

TEST(AwsvpcScriptTest, TheTableDispatchesByOutputInterfaceAndMasqueradesTasks) {
  std::string script = awsvpc_table_script(sample_options());
  EXPECT_TRUE(script.starts_with("add table inet wharfvpc_t1\ndelete table inet wharfvpc_t1\n"))
      << script;
  EXPECT_NE(script.find("map endpoints { type ifname : verdict; }"), std::string::npos);
  EXPECT_NE(script.find("type filter hook forward priority filter; policy accept;\n"
                        "    oifname vmap @endpoints"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("type filter hook output priority filter; policy accept;\n"
                        "    oifname vmap @endpoints"),
            std::string::npos)
      << script;
  // A task sends only from its own address, and no IPv6.
  EXPECT_NE(script.find("iifname @veths ip saddr . iifname != @task_ips drop\n"
                        "    iifname @veths meta nfproto ipv6 drop"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("ip saddr . iifname @task_ips oifgroup != " +
                        std::to_string(kAwsvpcLinkGroup) + " masquerade"),
            std::string::npos)
      << script;
}

TEST(AwsvpcScriptTest, AnEndpointsChainAcceptsRepliesThenItsRulesThenDrops) {
  std::vector<IngressRule> ingress = {
      {"tcp", 80, 80, {"10.0.0.0/8", "10.1.2.3/32", "192.0.2.9"}},  // the /32 inside the /8
      {"udp", 0, 65535, {"0.0.0.0/0", "10.0.0.0/8"}},               // anywhere: no saddr
      {"tcp", 8000, 8100, {"172.31.0.9/32"}},
      {"icmp", 0, 65535, {"172.31.0.0/20"}},
      {"all", 0, 65535, {"172.31.0.8"}},
      {"tcp", 22, 22, {}},  // no sources: admits nothing
  };
  std::string script = awsvpc_endpoint_script(sample_options(), sample_endpoint(ingress));
  std::string rule = "add rule inet wharfvpc_t1 wv0123456789abc ";
  std::vector<std::string> expected = {
      "add chain inet wharfvpc_t1 wv0123456789abc",
      "flush chain inet wharfvpc_t1 wv0123456789abc",
      rule + "ct state established,related accept",
      rule +
          "meta nfproto ipv4 ip saddr { 10.0.0.0/8, 192.0.2.9 } tcp dport 80 accept",  // one rule
                                                                                       // per rule
      rule + "meta nfproto ipv4 meta l4proto udp accept",
      rule + "meta nfproto ipv4 ip saddr 172.31.0.9 tcp dport 8000-8100 accept",
      rule + "meta nfproto ipv4 ip saddr 172.31.0.0/20 meta l4proto icmp accept",
      rule + "meta nfproto ipv4 ip saddr 172.31.0.8 accept",
      rule + "drop",
      "add element inet wharfvpc_t1 task_ips { 172.31.0.7 . \"wv0123456789abc\" }",
      "add element inet wharfvpc_t1 veths { \"wv0123456789abc\" }",
      "add element inet wharfvpc_t1 endpoints { \"wv0123456789abc\" : jump wv0123456789abc }",
  };
  EXPECT_EQ(script_lines(script), expected) << script;
}

TEST(AwsvpcScriptTest, AnIsolatedEndpointHasNoRules) {
  AwsvpcEndpoint isolated{"none-1", "/run/netns/wv-t1-none-1", "", "", "", "", {}};
  EXPECT_EQ(awsvpc_endpoint_script(sample_options(), isolated), "");
}

TEST(AwsvpcScriptTest, IcmpRulesAdmitTheirTypeAndCodeOnly) {
  std::string script = awsvpc_endpoint_script(
      sample_options(), sample_endpoint({{"icmp", 0, 0, {"10.0.0.0/8"}, {}, 8, -1},
                                         {"icmp", 0, 0, {"10.0.0.0/8"}, {}, 3, 4},
                                         {"icmp", 0, 0, {"10.0.0.0/8"}}}));
  EXPECT_NE(script.find("ip saddr 10.0.0.0/8 icmp type 8 accept\n"), std::string::npos) << script;
  EXPECT_NE(script.find("ip saddr 10.0.0.0/8 icmp type 3 icmp code 4 accept\n"), std::string::npos)
      << script;
  EXPECT_NE(script.find("ip saddr 10.0.0.0/8 meta l4proto icmp accept\n"), std::string::npos)
      << script;
  EXPECT_TRUE(validate_ingress({{"icmp", 0, 0, {"10.0.0.0/8"}, {}, 3, 4}}));
}

TEST(AwsvpcScriptTest, ValidatesIngressRules) {
  EXPECT_TRUE(validate_ingress({}).has_value());
  EXPECT_TRUE(validate_ingress({{"tcp", 1, 1, {"10.0.0.0/8"}}, {"all", 0, 0, {"1.2.3.4"}}}));
  std::vector<std::vector<IngressRule>> bad = {
      {{"sctp", 0, 65535, {"10.0.0.0/8"}}},
      {{"TCP", 0, 65535, {"10.0.0.0/8"}}},
      {{"tcp", 90, 80, {"10.0.0.0/8"}}},
      {{"udp", 0, 65535, {"10.0.0.1/8"}}},  // host bits
      {{"all", 0, 65535, {"10.0.0.0/33"}}},
      {{"icmp", 0, 65535, {"fe80::/10"}}},
      {{"icmp", 0, 0, {"10.0.0.0/8"}, {}, 256, -1}},  // types are 0-255
      {{"icmp", 0, 0, {"10.0.0.0/8"}, {}, -1, 0}},    // a code needs its type
  };
  for (const auto& rules : bad) {
    auto valid = validate_ingress(rules);
    ASSERT_FALSE(valid.has_value()) << rules[0].protocol << " " << rules[0].sources[0];
    EXPECT_EQ(valid.error().code, ErrorCode::kInvalidParameter);
  }
}

TEST(AwsvpcScriptTest, StateRoundTrips) {
  std::vector<AwsvpcEndpoint> endpoints = {
      sample_endpoint({{"tcp", 80, 90, {"10.0.0.0/8", "172.31.0.9/32"}}, {"icmp", 0, 65535, {}}}),
      {"none-1", "/run/netns/wv-t1-none-1", "", "", "", "", {}}};
  auto parsed = parse_awsvpc_state(awsvpc_state_json(endpoints));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(*parsed, endpoints);
  EXPECT_TRUE(parse_awsvpc_state(R"({"version":1})")->empty());
  EXPECT_FALSE(parse_awsvpc_state(R"({"version":2,"endpoints":[]})").has_value());
  EXPECT_FALSE(parse_awsvpc_state(R"({"version":1,"endpoints":[{"id":"x"}]})").has_value());
  EXPECT_FALSE(parse_awsvpc_state("[]").has_value());
}

TEST(AwsvpcScriptTest, NamesHostVethsWithThePrefix) {
  std::string veth = host_veth_name("wv-t1-", "task1", "wv");
  EXPECT_EQ(veth.size(), 15u);
  EXPECT_TRUE(veth.starts_with("wv"));
  EXPECT_EQ(veth, host_veth_name("wv-t1-", "task1", "wv"));
  EXPECT_NE(veth, host_veth_name("wv-t2-", "task1", "wv"));
  EXPECT_EQ(host_veth_name("wv-t1-", "task1", "wvab").size(), 15u);
  EXPECT_EQ(host_veth_name("br", "task1").substr(0, 4), "veth");
}

TEST(AwsvpcScriptTest, ParsesMacs) {
  auto mac = parse_mac("02:42:AC:1f:00:07");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(*mac, (MacAddress{0x02, 0x42, 0xac, 0x1f, 0x00, 0x07}));
  for (const char* bad : {"", "02:42:ac:1f:00", "02:42:ac:1f:00:0g", "02-42-ac-1f-00-07",
                          "02:42:ac:1f:00:07:", "2:42:ac:1f:00:07"}) {
    EXPECT_FALSE(parse_mac(bad).has_value()) << bad;
  }
}

// ---- Real networks ---------------------------------------------------------------------------

using testkit::have_command;
using testkit::shell;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Answers every TCP connection to a socket listen_in_namespace() made, on its own thread:
// with `reply`, after reading the request (HTTP), or with the client's address.
class NamespaceServer {
 public:
  enum class Mode { kGreet, kHttp, kPeerAddress };

  NamespaceServer(const std::string& netns_path, const std::string& address, std::uint16_t port,
                  std::string reply, Mode mode = Mode::kGreet)
      : reply_(std::move(reply)), mode_(mode) {
    auto listening = listen_in_namespace(netns_path, address, port);
    if (!listening) {
      error_ = listening.error().message;
      return;
    }
    fd_ = std::move(*listening);
    thread_ = std::thread([this] { serve(); });
  }
  ~NamespaceServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::string& error() const { return error_; }
  int fd() const { return fd_.get(); }

 private:
  void serve() {
    while (!stop_) {
      pollfd ready{fd_.get(), POLLIN, 0};
      if (poll(&ready, 1, 20) <= 0) continue;
      sockaddr_in peer{};
      socklen_t length = sizeof peer;
      UniqueFd client(
          accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC));
      if (!client) continue;
      if (mode_ == Mode::kHttp) {
        pollfd request{client.get(), POLLIN, 0};
        char buffer[1024];
        if (poll(&request, 1, 1000) > 0) (void)!read(client.get(), buffer, sizeof buffer);
      }
      std::string reply = reply_;
      if (mode_ == Mode::kPeerAddress) reply = format_ipv4(ntohl(peer.sin_addr.s_addr)) + "\n";
      (void)!write(client.get(), reply.data(), reply.size());
      shutdown(client.get(), SHUT_WR);
    }
  }

  std::string reply_;
  Mode mode_ = Mode::kGreet;
  UniqueFd fd_;
  std::string error_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// What the TCP server at ip:port says to a client in the namespace at `netns_path` (empty: the
// host); "" when no connection is made within 300 ms (a dropping rule).
// Sends one UDP datagram from inside `netns_path` with source `source` to ip:port.
void send_udp(const std::string& netns_path, const std::string& source, const std::string& ip,
              std::uint16_t port) {
  std::thread([&] {
    UniqueFd netns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns || setns(netns.get(), CLONE_NEWNET) != 0) return;
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    int one = 1;
    setsockopt(fd.get(), IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return;
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &peer.sin_addr);
    sendto(fd.get(), "hi", 2, 0, reinterpret_cast<sockaddr*>(&peer), sizeof peer);
  }).join();
}

// A UDP socket bound to 0.0.0.0:port inside `netns_path`.
UniqueFd udp_listener(const std::string& netns_path, std::uint16_t port) {
  UniqueFd out;
  std::thread([&] {
    UniqueFd netns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns || setns(netns.get(), CLONE_NEWNET) != 0) return;
    UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) == 0) out = std::move(fd);
  }).join();
  return out;
}

// Whether a datagram arrives on `fd` within half a second.
bool received(const UniqueFd& fd) {
  pollfd readable{fd.get(), POLLIN, 0};
  if (poll(&readable, 1, 500) != 1) return false;
  char buffer[16];
  return recv(fd.get(), buffer, sizeof buffer, 0) > 0;
}

std::string greeting(const std::string& netns_path, const std::string& ip, std::uint16_t port) {
  std::string said;
  std::thread([&] {
    if (!netns_path.empty()) {
      UniqueFd netns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!netns || setns(netns.get(), CLONE_NEWNET) != 0) return;
    }
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &peer.sin_addr);
    connect(fd.get(), reinterpret_cast<sockaddr*>(&peer), sizeof peer);
    pollfd ready{fd.get(), POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (poll(&ready, 1, 300) != 1 ||
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      return;
    }
    char buffer[256];
    pollfd readable{fd.get(), POLLIN, 0};
    while (poll(&readable, 1, 2000) == 1) {
      ssize_t got = read(fd.get(), buffer, sizeof buffer);
      if (got <= 0) break;
      said.append(buffer, static_cast<std::size_t>(got));
    }
  }).join();
  return said;
}

class AwsvpcNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!have_command("ip", "-V") || !have_command("nft", "-v")) {
      GTEST_SKIP() << "needs ip and nft";
    }
    static std::atomic<int> counter{0};
    test_idx_ = counter++;
    std::string dir = "/tmp/wharf-awsvpc-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    options_ = options_for(0);
    open_network();
  }

  // Network `network_idx` of this test: its own table, prefixes and state file.
  AwsvpcOptions options_for(int network_idx) {
    char tag[16];
    std::snprintf(tag, sizeof tag, "%04x%x%x", static_cast<unsigned>(getpid()) & 0xffff,
                  test_idx_ & 0xf, network_idx & 0xf);
    AwsvpcOptions options;
    options.nft_table = std::string("wharfvpc_test_") + tag;
    options.netns_prefix = std::string("wvt-") + tag + "-";
    options.veth_prefix = "wvt";
    options.state_file = dir_ / ("awsvpc-" + std::to_string(network_idx) + ".json");
    all_options_.push_back(options);
    return options;
  }

  // The test's task IPs: 198.18.<pid>.<test, n>, so parallel test processes rarely meet, and
  // out of 172.30.0.0/15, where bridge networks of agents on this host pick their subnets.
  std::string task_ip(int n) const {
    return "198.18." + std::to_string(getpid() % 256) + "." +
           std::to_string((test_idx_ * 12 + n) % 250 + 1);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    for (std::unique_ptr<AwsvpcNetwork>* network : {&network_, &other_network_}) {
      if (!*network) continue;
      auto destroyed = (*network)->destroy();
      EXPECT_TRUE(destroyed.has_value()) << destroyed.error().message;
      network->reset();
    }
    // Whatever destroy() missed is a failure, but is removed all the same.
    std::string namespaces = shell("ip netns list");
    std::string links = shell("ip -o link show");
    std::string tables = shell("nft list tables");
    std::string routes = shell("ip -4 route show");
    for (const AwsvpcOptions& options : all_options_) {
      EXPECT_EQ(namespaces.find(options.netns_prefix), std::string::npos) << namespaces;
      EXPECT_EQ(tables.find(options.nft_table), std::string::npos) << tables;
      EXPECT_FALSE(state_left(options.state_file)) << options.state_file;
      shell("nft delete table inet " + options.nft_table + " 2>/dev/null; for ns in $(ip netns " +
            "list | grep -o '^" + options.netns_prefix + "[^ ]*'); do ip netns del $ns; done");
    }
    for (const std::string& veth : veths_) {
      // A detached endpoint's veth goes with its namespace, which the kernel destroys shortly.
      auto deadline = Clock::now() + std::chrono::seconds(2);
      while (fs::exists("/sys/class/net/" + veth) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_FALSE(fs::exists("/sys/class/net/" + veth)) << links;
      shell("ip link del " + veth + " 2>/dev/null");
    }
    for (const char* net : {"198.18.", "198.19."}) {
      EXPECT_EQ(routes.find(net + std::to_string(getpid() % 256) + "."), std::string::npos)
          << routes;
    }
    fs::remove_all(dir_);
  }

  void open_network() {
    auto network = AwsvpcNetwork::open(options_);
    ASSERT_TRUE(network.has_value()) << network.error().message;
    network_ = std::move(*network);
  }

  AwsvpcEndpoint attach(const AwsvpcSpec& spec, AwsvpcNetwork* network = nullptr) {
    auto endpoint = (network ? network : network_.get())->attach(spec);
    EXPECT_TRUE(endpoint.has_value()) << endpoint.error().message;
    if (!endpoint) return {};
    if (!endpoint->host_veth.empty()) veths_.insert(endpoint->host_veth);
    return *endpoint;
  }

  // Open to TCP from anywhere.
  static std::vector<IngressRule> open_tcp() { return {{"tcp", 0, 65535, {"0.0.0.0/0"}}}; }

  // Host links whose alias names endpoint `id`'s namespace: its host veths.
  std::vector<std::string> veths_of(const std::string& id) {
    std::vector<std::string> veths;
    for (const auto& entry : fs::directory_iterator("/sys/class/net")) {
      std::string alias = shell("cat " + (entry.path() / "ifalias").string() + " 2>/dev/null");
      if (alias == options_.netns_prefix + id + "\n") veths.push_back(entry.path().filename());
    }
    return veths;
  }

  std::string in_netns(const AwsvpcEndpoint& endpoint, const std::string& command) {
    return shell("ip netns exec " + fs::path(endpoint.netns_path).filename().string() + " " +
                 command);
  }

  fs::path dir_;
  int test_idx_ = 0;
  AwsvpcOptions options_;
  std::vector<AwsvpcOptions> all_options_;
  std::unique_ptr<AwsvpcNetwork> network_;
  std::unique_ptr<AwsvpcNetwork> other_network_;  // a second agent's, where a test needs one
  std::set<std::string> veths_;
};

TEST_F(AwsvpcNetworkTest, AnEndpointHasItsAddressRoutesAndMac) {
  AwsvpcEndpoint endpoint = attach({"task-a", task_ip(0), "", open_tcp()});
  ASSERT_FALSE(HasFailure());
  // Running (its queue active) on return, not only once the kernel gets round to it.
  std::ifstream operstate("/sys/class/net/" + endpoint.host_veth + "/operstate");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(operstate), {}), "up\n");
  EXPECT_EQ(endpoint.netns_path, "/run/netns/" + options_.netns_prefix + "task-a");
  EXPECT_EQ(endpoint.mac, mac_for_address(*parse_ipv4(task_ip(0))));
  EXPECT_EQ(endpoint.gateway, "169.254.1.1");
  EXPECT_TRUE(endpoint.host_veth.starts_with("wvt")) << endpoint.host_veth;
  EXPECT_EQ(endpoint.host_veth.size(), 15u);

  std::string addresses = in_netns(endpoint, "ip -o -4 addr show");
  EXPECT_NE(addresses.find("lo    inet 169.254.170.2/32"), std::string::npos) << addresses;
  EXPECT_NE(addresses.find("eth0    inet " + task_ip(0) + "/32"), std::string::npos) << addresses;
  std::string routes = in_netns(endpoint, "ip -4 route show");
  EXPECT_NE(routes.find("default via 169.254.1.1 dev eth0"), std::string::npos) << routes;
  EXPECT_NE(routes.find("169.254.1.1 dev eth0"), std::string::npos) << routes;
  std::string eth0 = in_netns(endpoint, "ip -o link show eth0");
  EXPECT_NE(eth0.find("link/ether " + endpoint.mac), std::string::npos) << eth0;
  EXPECT_NE(eth0.find("state UP"), std::string::npos) << eth0;
  std::string neighbour = in_netns(endpoint, "ip neigh show 169.254.1.1");
  EXPECT_NE(neighbour.find("ee:ee:ee:ee:ee:ee PERMANENT"), std::string::npos) << neighbour;

  std::string host_route = shell("ip -4 route show " + task_ip(0));
  EXPECT_NE(host_route.find("dev " + endpoint.host_veth + " "), std::string::npos) << host_route;
  std::string veth = "/proc/sys/net/ipv4/conf/" + endpoint.host_veth + "/proxy_arp";
  EXPECT_EQ(shell("cat " + veth), "1\n");
  EXPECT_EQ(shell("cat /sys/class/net/" + endpoint.host_veth + "/ifalias"),
            options_.netns_prefix + "task-a\n");
  EXPECT_EQ(network_->endpoints(), std::vector<AwsvpcEndpoint>{endpoint});
}

TEST_F(AwsvpcNetworkTest, TwoEndpointsAndTheHostReachEachOther) {
  AwsvpcEndpoint first = attach({"first", task_ip(0), "", open_tcp()});
  AwsvpcEndpoint second = attach({"second", task_ip(1), "", open_tcp()});
  ASSERT_FALSE(HasFailure());
  NamespaceServer first_server(first.netns_path, first.ip, 7000, "first\n");
  NamespaceServer second_server(second.netns_path, "0.0.0.0", 7000, "second\n");
  ASSERT_EQ(first_server.error(), "");
  ASSERT_EQ(second_server.error(), "");
  EXPECT_EQ(greeting(first.netns_path, second.ip, 7000), "second\n");
  EXPECT_EQ(greeting(second.netns_path, first.ip, 7000), "first\n");
  EXPECT_EQ(greeting("", first.ip, 7000), "first\n");
  EXPECT_EQ(greeting("", second.ip, 7000), "second\n");
  // ICMP is not open: a ping is dropped; opened, it passes.
  if (!have_command("busybox", "--help")) GTEST_SKIP() << "needs busybox for ping";
  std::string ping = "busybox ping -c1 -W1 " + second.ip + " >/dev/null && echo ok";
  EXPECT_EQ(in_netns(first, ping), "");
  ASSERT_TRUE(network_->update_ingress("second", {{"icmp", 0, 0, {first.ip + "/32"}}}));
  EXPECT_EQ(in_netns(first, ping), "ok\n");
}

TEST_F(AwsvpcNetworkTest, TwoNetworksOnOneSubnetReachEachOthersEndpoints) {
  auto other = AwsvpcNetwork::open(options_for(1));
  ASSERT_TRUE(other.has_value()) << other.error().message;
  other_network_ = std::move(*other);
  AwsvpcEndpoint mine = attach({"mine", task_ip(0), "", open_tcp()});
  AwsvpcEndpoint theirs = attach({"theirs", task_ip(1), "", open_tcp()}, other_network_.get());
  ASSERT_FALSE(HasFailure());
  {
    NamespaceServer my_server(mine.netns_path, "0.0.0.0", 7000, "mine\n");
    NamespaceServer their_server(theirs.netns_path, "0.0.0.0", 7000, "theirs\n");
    EXPECT_EQ(greeting(mine.netns_path, theirs.ip, 7000), "theirs\n");
    EXPECT_EQ(greeting(theirs.netns_path, mine.ip, 7000), "mine\n");

    // Their IP is theirs: attaching it here is refused, and leaves nothing behind.
    auto taken = network_->attach({"copy", theirs.ip, "", {}});
    ASSERT_FALSE(taken.has_value());
    EXPECT_EQ(taken.error().code, ErrorCode::kResourceInUse) << taken.error().message;
    EXPECT_FALSE(fs::exists("/run/netns/" + options_.netns_prefix + "copy"));
    EXPECT_TRUE(veths_of("copy").empty());
    EXPECT_EQ(greeting(mine.netns_path, theirs.ip, 7000), "theirs\n");
  }
}

// "The world": a namespace behind a veth of its own, 10.254.<pid>.2, the host's end .1.
class World {
 public:
  World() : name_("wvtw-" + std::to_string(getpid())), veth_("wvw" + std::to_string(getpid())) {
    std::string net = "10.254." + std::to_string(getpid() % 250) + ".";
    host_ip_ = net + "1";
    ip_ = net + "2";
    error_ = shell("ip netns add " + name_ + " && ip link add " + veth_ + " type veth peer name " +
                   "eth0 netns " + name_ + " && ip addr add " + host_ip_ + "/30 dev " + veth_ +
                   " && ip link set " + veth_ + " up && ip -n " + name_ + " addr add " + ip_ +
                   "/30 dev eth0 && ip -n " + name_ + " link set eth0 up && ip -n " + name_ +
                   " route add default via " + host_ip_);
  }
  ~World() { shell("ip link del " + veth_ + "; ip netns del " + name_); }
  std::string path() const { return "/run/netns/" + name_; }

  std::string name_, veth_, host_ip_, ip_, error_;
};

TEST_F(AwsvpcNetworkTest, TasksAreMasqueradedOnlyWhenLeavingForTheWorld) {
  AwsvpcEndpoint first = attach({"first", task_ip(0), "", open_tcp()});
  AwsvpcEndpoint second = attach({"second", task_ip(1), "", open_tcp()});
  ASSERT_FALSE(HasFailure());
  World world;
  ASSERT_EQ(world.error_, "");
  {
    NamespaceServer outside(world.path(), "0.0.0.0", 7100, "", NamespaceServer::Mode::kPeerAddress);
    NamespaceServer inside(second.netns_path, "0.0.0.0", 7100, "",
                           NamespaceServer::Mode::kPeerAddress);
    EXPECT_EQ(greeting(first.netns_path, world.ip_, 7100), world.host_ip_ + "\n");
    EXPECT_EQ(greeting(first.netns_path, second.ip, 7100), first.ip + "\n");
  }
}

TEST_F(AwsvpcNetworkTest, IngressRulesAdmitOnlyTheirPortsAndSources) {
  AwsvpcEndpoint web = attach({"web", task_ip(0), "", {{"tcp", 7001, 7001, {"0.0.0.0/0"}}}});
  AwsvpcEndpoint client = attach({"client", task_ip(1), "", {}});
  ASSERT_FALSE(HasFailure());
  NamespaceServer open_port(web.netns_path, "0.0.0.0", 7001, "7001\n");
  NamespaceServer closed_port(web.netns_path, "0.0.0.0", 7002, "7002\n");
  EXPECT_EQ(greeting("", web.ip, 7001), "7001\n");
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "7001\n");
  EXPECT_EQ(greeting("", web.ip, 7002), "");
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7002), "");
  // No rules: nothing reaches the client, though it reaches out.
  NamespaceServer client_server(client.netns_path, "0.0.0.0", 7001, "client\n");
  EXPECT_EQ(greeting("", client.ip, 7001), "");
  EXPECT_EQ(greeting(web.netns_path, client.ip, 7001), "");

  // 7002 from the client alone, 7001 no more.
  auto updated = network_->update_ingress("web", {{"tcp", 7002, 7002, {client.ip + "/32"}}});
  ASSERT_TRUE(updated.has_value()) << updated.error().message;
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7002), "7002\n");
  EXPECT_EQ(greeting("", web.ip, 7002), "");
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "");
  EXPECT_EQ(network_->endpoints()[1].ingress[0].from_port, 7002);  // "web" sorts after "client"

  auto unknown = network_->update_ingress("nobody", {});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  auto bad = network_->update_ingress("web", {{"tcp", 0, 65535, {"nonsense"}}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidParameter);
}

TEST_F(AwsvpcNetworkTest, GroupMembersAreAdmittedThroughTheGroupsSet) {
  AwsvpcEndpoint web =
      attach({"web", task_ip(0), "", {{"tcp", 7001, 7001, {}, {"sg-0123456789abcdef0"}}}});
  AwsvpcEndpoint client = attach({"client", task_ip(1), "", {}});
  ASSERT_FALSE(HasFailure());
  NamespaceServer server(web.netns_path, "0.0.0.0", 7001, "7001\n");
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "");  // the set starts empty
  // Membership alone changes who gets in; the web task's rules stay as they are.
  ASSERT_TRUE(network_->set_group_members({{"sg-0123456789abcdef0", {client.ip}}}));
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "7001\n");
  EXPECT_EQ(greeting("", web.ip, 7001), "");  // the host is no member
  // Another task cannot pass for a member: what it sends from an address not its own is dropped.
  AwsvpcEndpoint intruder = attach({"intruder", task_ip(2), "", {}});
  ASSERT_TRUE(network_->update_ingress("web", {{"tcp", 7001, 7001, {}, {"sg-0123456789abcdef0"}},
                                               {"udp", 7003, 7003, {}, {"sg-0123456789abcdef0"}}}));
  UniqueFd udp = udp_listener(web.netns_path, 7003);
  ASSERT_TRUE(udp);
  send_udp(client.netns_path, client.ip, web.ip, 7003);
  EXPECT_TRUE(received(udp));                                       // the member itself
  in_netns(intruder, "ip addr add " + client.ip + "/32 dev eth0");  // the member's, forged
  send_udp(intruder.netns_path, client.ip, web.ip, 7003);
  EXPECT_FALSE(received(udp));
  send_udp(intruder.netns_path, intruder.ip, web.ip, 7003);
  EXPECT_FALSE(received(udp));  // honest, but no member

  // A restarted agent's table admits the members at once, before any word from the server.
  network_.reset();
  auto reopened = AwsvpcNetwork::open(options_);
  ASSERT_TRUE(reopened) << reopened.error().message;
  network_ = std::move(*reopened);
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "7001\n");
  ASSERT_TRUE(network_->set_group_members({{"sg-0123456789abcdef0", {}}}));
  EXPECT_EQ(greeting(client.netns_path, web.ip, 7001), "");
  EXPECT_FALSE(network_->set_group_members({{"not-a-group", {}}}));
  EXPECT_FALSE(network_->set_group_members({{"sg-0123456789abcdef0", {"nonsense"}}}));
}

TEST_F(AwsvpcNetworkTest, TheMetadataAddressAnswersInsideEveryEndpoint) {
  if (!have_command("curl", "-V")) GTEST_SKIP() << "needs curl";
  AwsvpcEndpoint task = attach({"task", task_ip(0), "", {}});
  AwsvpcEndpoint isolated = attach({"isolated", "", "", {}});
  ASSERT_FALSE(HasFailure());
  std::string reply = "HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nmetadata\n";
  for (const AwsvpcEndpoint& endpoint : {task, isolated}) {
    NamespaceServer server(endpoint.netns_path, "169.254.170.2", 8080, reply,
                           NamespaceServer::Mode::kHttp);
    ASSERT_EQ(server.error(), "");
    int flags = fcntl(server.fd(), F_GETFL);
    EXPECT_NE(flags & O_NONBLOCK, 0);
    EXPECT_NE(fcntl(server.fd(), F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(in_netns(endpoint, "curl -s -m 2 http://169.254.170.2:8080/"), "metadata\n");
    auto again = listen_in_namespace(endpoint.netns_path, "169.254.170.2", 8080);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, ErrorCode::kResourceInUse) << again.error().message;
  }
  auto missing =
      listen_in_namespace("/run/netns/" + options_.netns_prefix + "nobody", "169.254.170.2", 80);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(AwsvpcNetworkTest, AnIsolatedEndpointHasOnlyLoopback) {
  AwsvpcEndpoint isolated = attach({"none.1", "", "", {{"tcp", 0, 65535, {"0.0.0.0/0"}}}});
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(isolated.ip, "");
  EXPECT_EQ(isolated.host_veth, "");
  EXPECT_EQ(isolated.gateway, "");
  EXPECT_TRUE(isolated.ingress.empty());
  std::string links = in_netns(isolated, "ip -o link show");
  EXPECT_NE(links.find("1: lo: <LOOPBACK,UP,LOWER_UP>"), std::string::npos) << links;
  EXPECT_EQ(std::count(links.begin(), links.end(), '\n'), 1) << links;
  EXPECT_EQ(in_netns(isolated, "ip -4 route show"), "");
  auto detached = network_->detach("none.1");
  ASSERT_TRUE(detached.has_value()) << detached.error().message;
  EXPECT_FALSE(fs::exists(isolated.netns_path));
}

TEST_F(AwsvpcNetworkTest, AttachIsIdempotentAndAnIpHasOneEndpoint) {
  AwsvpcEndpoint first = attach({"first", task_ip(0), "", {}});
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(attach({"first", task_ip(0), "", {}}), first);
  AwsvpcEndpoint opened = attach({"first", task_ip(0), "", open_tcp()});
  EXPECT_EQ(opened.ingress, open_tcp());
  EXPECT_EQ(network_->endpoints(), std::vector<AwsvpcEndpoint>{opened});

  auto same_ip = network_->attach({"second", task_ip(0), "", {}});
  ASSERT_FALSE(same_ip.has_value());
  EXPECT_EQ(same_ip.error().code, ErrorCode::kResourceInUse);
  auto other_ip = network_->attach({"first", task_ip(1), "", {}});
  ASSERT_FALSE(other_ip.has_value());
  EXPECT_EQ(other_ip.error().code, ErrorCode::kResourceInUse);

  for (AwsvpcSpec bad : std::vector<AwsvpcSpec>{{"a/b", task_ip(2), "", {}},
                                                {"", task_ip(2), "", {}},
                                                {"c", "172.31.0.300", "", {}},
                                                {"c", "127.0.0.5", "", {}},
                                                {"c", task_ip(2), "02:42", {}},
                                                {"c", task_ip(2), "01:00:5e:00:00:01", {}},
                                                {"c", task_ip(2), "", {{"gre", 0, 0, {}}}}}) {
    auto refused = network_->attach(bad);
    ASSERT_FALSE(refused.has_value()) << bad.id << " " << bad.ip;
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidParameter) << refused.error().message;
  }

  // Detached, its IP is free at once, for another id, with a MAC of the caller's.
  ASSERT_TRUE(network_->detach("first").has_value());
  ASSERT_TRUE(network_->detach("first").has_value());  // unknown: fine
  AwsvpcEndpoint second = attach({"second", task_ip(0), "0A:58:AC:1F:00:07", open_tcp()});
  EXPECT_EQ(second.mac, "0a:58:ac:1f:00:07");
  NamespaceServer server(second.netns_path, "0.0.0.0", 7000, "second\n");
  EXPECT_EQ(greeting("", second.ip, 7000), "second\n");
}

TEST_F(AwsvpcNetworkTest, AFailedAttachUndoesWhatItSetUp) {
  // Someone else routes the IP on this host.
  ASSERT_EQ(shell("ip route add " + task_ip(0) + "/32 dev lo"), "");
  auto attached = network_->attach({"web", task_ip(0), "", open_tcp()});
  shell("ip route del " + task_ip(0) + "/32 dev lo");
  ASSERT_FALSE(attached.has_value());
  EXPECT_EQ(attached.error().code, ErrorCode::kResourceInUse) << attached.error().message;
  EXPECT_NE(attached.error().message.find(task_ip(0)), std::string::npos);
  EXPECT_FALSE(fs::exists("/run/netns/" + options_.netns_prefix + "web"));
  EXPECT_TRUE(veths_of("web").empty());
  std::string table = shell("nft list table inet " + options_.nft_table);
  EXPECT_EQ(table.find("chain wvt"), std::string::npos) << table;
  EXPECT_EQ(table.find(task_ip(0)), std::string::npos) << table;
  EXPECT_TRUE(network_->endpoints().empty());
  // The IP is free again.
  attach({"web", task_ip(0), "", {}});
}

TEST_F(AwsvpcNetworkTest, ReopenAdoptsTheStateAndReconcileRemovesWhatIsNotLive) {
  AwsvpcEndpoint kept = attach({"kept", task_ip(0), "", {{"tcp", 7001, 7001, {"0.0.0.0/0"}}}});
  AwsvpcEndpoint dead = attach({"dead", task_ip(1), "", open_tcp()});
  AwsvpcEndpoint isolated = attach({"isolated", "", "", {}});
  ASSERT_FALSE(HasFailure());
  std::vector<AwsvpcEndpoint> before = network_->endpoints();
  network_.reset();  // the agent dies; everything stays
  // Leftovers of a crash: an attach cut short (a namespace), a veth whose namespace a process
  // still holds.
  ASSERT_EQ(shell("ip netns add " + options_.netns_prefix + "stray"), "");
  std::string orphan = "wvtorphan" + std::to_string(getpid() % 100000);
  ASSERT_EQ(shell("ip link add " + orphan + " type veth peer name " + orphan + "p && ip link " +
                  "set " + orphan + " alias " + options_.netns_prefix + "gone"),
            "");
  veths_.insert(orphan);

  open_network();
  EXPECT_EQ(network_->endpoints(), before);
  NamespaceServer open_port(kept.netns_path, "0.0.0.0", 7001, "7001\n");
  NamespaceServer closed_port(kept.netns_path, "0.0.0.0", 7002, "7002\n");
  EXPECT_EQ(greeting("", kept.ip, 7001), "7001\n");
  EXPECT_EQ(greeting("", kept.ip, 7002), "");  // the rules came back with the table

  auto reconciled = network_->reconcile({"kept", "isolated"});
  ASSERT_TRUE(reconciled.has_value()) << reconciled.error().message;
  EXPECT_EQ(network_->endpoints(), (std::vector<AwsvpcEndpoint>{isolated, kept}));
  EXPECT_FALSE(fs::exists(dead.netns_path));
  EXPECT_FALSE(fs::exists("/sys/class/net/" + dead.host_veth));
  EXPECT_FALSE(fs::exists("/run/netns/" + options_.netns_prefix + "stray"));
  EXPECT_FALSE(fs::exists("/sys/class/net/" + orphan));
  EXPECT_EQ(shell("ip -4 route show " + dead.ip), "");
  EXPECT_TRUE(fs::exists(isolated.netns_path));
  EXPECT_EQ(greeting("", kept.ip, 7001), "7001\n");
}

TEST_F(AwsvpcNetworkTest, ADetachedEndpointsRulesAreCollected) {
  AwsvpcEndpoint first = attach({"first", task_ip(0), "", open_tcp()});
  AwsvpcEndpoint second = attach({"second", task_ip(1), "", open_tcp()});
  ASSERT_TRUE(network_->detach("first").has_value());
  // Attached again at once: a new veth (the old one may still be going with its namespace).
  AwsvpcEndpoint again = attach({"first", task_ip(0), "", open_tcp()});
  EXPECT_NE(again.host_veth, first.host_veth);
  ASSERT_TRUE(network_->detach("first").has_value());
  network_.reset();  // runs what the collector was given
  std::string table = shell("nft list table inet " + options_.nft_table);
  EXPECT_EQ(table.find("chain " + first.host_veth), std::string::npos) << table;
  EXPECT_EQ(table.find("chain " + again.host_veth), std::string::npos) << table;
  EXPECT_EQ(table.find(first.ip), std::string::npos) << table;
  EXPECT_NE(table.find("chain " + second.host_veth), std::string::npos) << table;
  EXPECT_NE(table.find(second.ip + " . \"" + second.host_veth + "\""), std::string::npos) << table;
  open_network();
}

TEST_F(AwsvpcNetworkTest, DestroyLeavesNothing) {
  attach({"first", task_ip(0), "", open_tcp()});
  attach({"second", task_ip(1), "", {}});
  attach({"third", "", "", {}});
  auto destroyed = network_->destroy();
  ASSERT_TRUE(destroyed.has_value()) << destroyed.error().message;
  for (const std::string& veth : veths_) EXPECT_FALSE(fs::exists("/sys/class/net/" + veth));
  EXPECT_FALSE(network_->attach({"fourth", task_ip(3), "", {}}).has_value());
  network_.reset();  // TearDown checks namespaces, links, routes, tables and the state file
}

// Attach and detach times, one at a time and 100 at once (each on its own thread, as the task
// engine calls them).
TEST_F(AwsvpcNetworkTest, AttachAndDetachTimes) {
  auto percentile = [](std::vector<double> times, double fraction) {
    std::sort(times.begin(), times.end());
    return times[static_cast<std::size_t>(fraction * static_cast<double>(times.size() - 1))];
  };
  std::vector<double> attach_times, detach_times, churn_times;
  std::vector<IngressRule> rules = {{"tcp", 80, 80, {"198.18.0.0/15", "10.0.0.0/8"}}};
  for (int task_idx = 0; task_idx < 10; ++task_idx) {
    auto start = Clock::now();
    attach({"serial" + std::to_string(task_idx), task_ip(task_idx), "", rules});
    attach_times.push_back(milliseconds_since(start));
  }
  for (int task_idx = 0; task_idx < 10; ++task_idx) {
    auto start = Clock::now();
    EXPECT_TRUE(network_->detach("serial" + std::to_string(task_idx)).has_value());
    detach_times.push_back(milliseconds_since(start));
  }
  // A task replaced by another: each attach follows a detach.
  for (int round_idx = 0; round_idx < 10; ++round_idx) {
    auto start = Clock::now();
    attach({"churn" + std::to_string(round_idx), task_ip(0), "", rules});
    churn_times.push_back(milliseconds_since(start));
    EXPECT_TRUE(network_->detach("churn" + std::to_string(round_idx)).has_value());
  }
  std::printf(
      "awsvpc one at a time: attach p50 %.1f ms, max %.1f ms; detach p50 %.1f ms, "
      "max %.1f ms; attach after a detach p50 %.1f ms, max %.1f ms\n",
      percentile(attach_times, 0.5), percentile(attach_times, 1.0), percentile(detach_times, 0.5),
      percentile(detach_times, 1.0), percentile(churn_times, 0.5), percentile(churn_times, 1.0));

  constexpr int kTasks = 100;
  std::vector<double> concurrent_attach(kTasks), concurrent_detach(kTasks);
  std::atomic<int> failures{0};
  auto run_all = [&](auto&& operation) {
    auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int task_idx = 0; task_idx < kTasks; ++task_idx) {
      threads.emplace_back([&, task_idx] { operation(task_idx); });
    }
    for (std::thread& thread : threads) thread.join();
    return milliseconds_since(start);
  };
  std::string subnet = "198.19." + std::to_string(getpid() % 256) + ".";
  double attach_all = run_all([&](int task_idx) {
    auto start = Clock::now();
    auto attached = network_->attach(
        {"task" + std::to_string(task_idx), subnet + std::to_string(task_idx + 1), "", open_tcp()});
    concurrent_attach[task_idx] = milliseconds_since(start);
    if (!attached) {
      ++failures;
      ADD_FAILURE() << attached.error().message;
    }
  });
  ASSERT_EQ(failures, 0);
  EXPECT_EQ(network_->endpoints().size(), static_cast<std::size_t>(kTasks));
  double detach_all = run_all([&](int task_idx) {
    auto start = Clock::now();
    auto detached = network_->detach("task" + std::to_string(task_idx));
    concurrent_detach[task_idx] = milliseconds_since(start);
    if (!detached) ADD_FAILURE() << detached.error().message;
  });
  std::printf(
      "awsvpc %d at once: all attached in %.0f ms (each p50 %.1f ms, max %.1f ms); all "
      "detached in %.0f ms (each p50 %.1f ms, max %.1f ms)\n",
      kTasks, attach_all, percentile(concurrent_attach, 0.5), percentile(concurrent_attach, 1.0),
      detach_all, percentile(concurrent_detach, 0.5), percentile(concurrent_detach, 1.0));
  EXPECT_TRUE(network_->endpoints().empty());
  EXPECT_LT(detach_all, 2000.0);
}

}  // namespace
}  // namespace wharf::agent

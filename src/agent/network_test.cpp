// The bridge network: pure subnet, address, port and state helpers, then real bridges, veths,
// namespaces and nftables rules (as root; skipped elsewhere).
#include "agent/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include "agent/command.hpp"
#include "agent/test_commands.hpp"

namespace wharf::agent {
namespace {

// Whether a network's state file (either slot) is still there.
bool state_left(const std::filesystem::path& path) {
  auto text = StateFile(path).read();
  return !text || text->has_value();
}

namespace fs = std::filesystem;

// ---- Pure helpers ----------------------------------------------------------------------------

TEST(NetworkAddressTest, ParsesAndFormatsIpv4) {
  auto address = parse_ipv4("172.30.7.1");
  ASSERT_TRUE(address.has_value());
  EXPECT_EQ(*address, (172u << 24) | (30u << 16) | (7u << 8) | 1u);
  EXPECT_EQ(format_ipv4(*address), "172.30.7.1");
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "1.2.3.256", "1..2.3", "a.b.c.d", "1.2.3.4 ",
                          "-1.2.3.4", "1.2.3.0004"}) {
    EXPECT_FALSE(parse_ipv4(bad).has_value()) << bad;
  }
}

TEST(NetworkAddressTest, ParsesPrefixesAndRejectsHostBits) {
  auto prefix = parse_ipv4_prefix("10.251.3.0/24");
  ASSERT_TRUE(prefix.has_value());
  EXPECT_EQ(prefix->to_string(), "10.251.3.0/24");
  EXPECT_EQ(format_ipv4(prefix->last()), "10.251.3.255");
  EXPECT_EQ(parse_ipv4_prefix("10.1.2.3")->length, 32);
  EXPECT_EQ(parse_ipv4_prefix("0.0.0.0/0")->mask(), 0u);
  auto host_bits = parse_ipv4_prefix("10.251.3.1/24");
  ASSERT_FALSE(host_bits.has_value());
  EXPECT_NE(host_bits.error().message.find("10.251.3.0/24"), std::string::npos);
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0/8"}) {
    EXPECT_FALSE(parse_ipv4_prefix(bad).has_value()) << bad;
  }
  EXPECT_EQ(prefix_of(*parse_ipv4("192.0.2.77"), 24).to_string(), "192.0.2.0/24");
}

TEST(NetworkAddressTest, PrefixesOverlapWhenOneContainsTheOther) {
  auto net = [](const char* text) { return *parse_ipv4_prefix(text); };
  EXPECT_TRUE(net("172.30.0.0/16").overlaps(net("172.30.5.0/24")));
  EXPECT_TRUE(net("172.30.5.0/24").overlaps(net("172.30.0.0/16")));
  EXPECT_TRUE(net("172.30.5.9").overlaps(net("172.30.5.0/24")));
  EXPECT_FALSE(net("172.30.5.0/24").overlaps(net("172.30.6.0/24")));
  EXPECT_TRUE(net("0.0.0.0/0").overlaps(net("10.0.0.0/8")));
}

TEST(NetworkAddressTest, ChoosesTheFirstFreeSlash24) {
  auto net = [](const char* text) { return *parse_ipv4_prefix(text); };
  EXPECT_EQ(choose_free_subnet({})->to_string(), "172.30.0.0/24");
  EXPECT_EQ(choose_free_subnet({net("172.30.0.0/24"), net("172.30.1.1")})->to_string(),
            "172.30.2.0/24");
  EXPECT_EQ(choose_free_subnet({net("172.30.0.0/16")})->to_string(), "172.31.0.0/24");
  EXPECT_EQ(choose_free_subnet({net("192.168.0.0/16"), net("10.0.0.0/8")})->to_string(),
            "172.30.0.0/24");
  EXPECT_FALSE(choose_free_subnet({net("172.16.0.0/12")}).has_value());
}

TEST(NetworkAddressTest, ReadsPrefixesFromIpJson) {
  const char* addr_json = R"([
    {"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
    {"ifindex":4,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24},
                                              {"family":"inet6","local":"fe80::1","prefixlen":64}]},
    {"ifindex":9,"ifname":"wharf-x","addr_info":[]}])";
  auto addresses = prefixes_in_addr_json(addr_json);
  ASSERT_TRUE(addresses.has_value()) << addresses.error().message;
  ASSERT_EQ(addresses->size(), 2u);
  EXPECT_EQ((*addresses)[0].to_string(), "127.0.0.0/8");
  EXPECT_EQ((*addresses)[1].to_string(), "192.0.2.0/24");

  const char* route_json = R"([
    {"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},
    {"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2"},
    {"type":"local","dst":"172.30.4.1","table":"local","dev":"wharf-y"},
    {"type":"unreachable","dst":"10.9.0.0/16","table":"main"}])";
  auto routes = prefixes_in_route_json(route_json);
  ASSERT_TRUE(routes.has_value()) << routes.error().message;
  ASSERT_EQ(routes->size(), 3u);
  EXPECT_EQ((*routes)[0].to_string(), "192.0.2.0/24");
  EXPECT_EQ((*routes)[1].to_string(), "172.30.4.1/32");
  EXPECT_EQ((*routes)[2].to_string(), "10.9.0.0/16");
  EXPECT_EQ(device_in_route_json(route_json), "eth0");
  EXPECT_EQ(device_in_route_json("[]"), std::nullopt);
  EXPECT_FALSE(prefixes_in_route_json("not json").has_value());
}

TEST(NetworkAddressTest, HandsOutHostAddressesAfterTheGateway) {
  Ipv4Prefix subnet = *parse_ipv4_prefix("10.251.9.0/24");
  EXPECT_EQ(format_ipv4(gateway_address(subnet)), "10.251.9.1");
  EXPECT_EQ(format_ipv4(*next_free_address(subnet, {})), "10.251.9.2");
  std::set<std::uint32_t> allocated = {*parse_ipv4("10.251.9.2"), *parse_ipv4("10.251.9.4")};
  EXPECT_EQ(format_ipv4(*next_free_address(subnet, allocated)), "10.251.9.3");
  Ipv4Prefix tiny = *parse_ipv4_prefix("10.251.9.0/30");  // .0 net, .1 gateway, .3 broadcast
  EXPECT_EQ(format_ipv4(*next_free_address(tiny, {})), "10.251.9.2");
  EXPECT_FALSE(next_free_address(tiny, {*parse_ipv4("10.251.9.2")}).has_value());
}

TEST(NetworkAddressTest, DerivesMacsAndVethNames) {
  EXPECT_EQ(mac_for_address(*parse_ipv4("172.30.7.2")), "02:42:ac:1e:07:02");
  std::string veth = host_veth_name("wharf-1a2b3c", "task-1");
  EXPECT_EQ(veth.size(), 15u);
  EXPECT_TRUE(veth.starts_with("veth"));
  EXPECT_EQ(veth, host_veth_name("wharf-1a2b3c", "task-1"));
  EXPECT_NE(veth, host_veth_name("wharf-1a2b3c", "task-2"));
  EXPECT_NE(veth, host_veth_name("wharf-9z9z9z", "task-1"));
}

TEST(NetworkPortTest, PicksFromStartSkippingTakenAndRefusedPorts) {
  auto any = [](std::uint16_t) { return true; };
  EXPECT_EQ(pick_port(100, 105, 100, {}, any), 100);
  EXPECT_EQ(pick_port(100, 105, 102, {102, 103}, any), 104);
  EXPECT_EQ(pick_port(100, 105, 105, {105}, any), 100);  // wraps around
  EXPECT_EQ(pick_port(100, 105, 7, {}, any), 100);       // a start outside the range
  EXPECT_EQ(pick_port(100, 105, 100, {}, [](std::uint16_t port) { return port == 103; }), 103);
  EXPECT_FALSE(pick_port(100, 102, 100, {100, 101}, [](std::uint16_t port) {
                 return port != 102;
               }).has_value());
  EXPECT_FALSE(pick_port(200, 100, 100, {}, any).has_value());
  EXPECT_EQ(pick_port(65535, 65535, 65535, {}, any), 65535);
}

Endpoint sample_endpoint() {
  return Endpoint{"task-1.web",
                  "/run/netns/wt-task-1.web",
                  "10.251.9.2",
                  "10.251.9.1",
                  "02:42:0a:fb:09:02",
                  host_veth_name("wt-br", "task-1.web"),
                  {{"0.0.0.0", 80, 49153, "tcp"}, {"0.0.0.0", 53, 8053, "udp"}}};
}

TEST(NetworkStateTest, RoundTripsThroughJson) {
  NetworkState state{"10.251.9.0/24", {sample_endpoint()}};
  auto parsed = parse_network_state(network_state_json(state));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->subnet, state.subnet);
  EXPECT_EQ(parsed->endpoints, state.endpoints);
  EXPECT_FALSE(parse_network_state("{}").has_value());
  EXPECT_FALSE(parse_network_state(R"({"version":1,"endpoints":[{"id":"x"}]})").has_value());
  EXPECT_FALSE(parse_network_state("[").has_value());
}

TEST(NetworkNftTest, TableScriptReplacesTheTableAndMapsPorts) {
  BridgeOptions options{"wt-br", "", "wt_table", "wt-", "/tmp/x.json"};
  std::string script =
      nft_table_script(options, *parse_ipv4_prefix("10.251.9.0/24"), {sample_endpoint()});
  EXPECT_TRUE(script.starts_with("add table ip wt_table\ndelete table ip wt_table\n"));
  EXPECT_NE(script.find("elements = { 49153 : 10.251.9.2 . 80 }"), std::string::npos);
  EXPECT_NE(script.find("elements = { 8053 : 10.251.9.2 . 53 }"), std::string::npos);
  EXPECT_NE(script.find("oifname != \"wt-br\" ip saddr 10.251.9.0/24 masquerade"),
            std::string::npos);
  EXPECT_EQ(nft_table_script(options, *parse_ipv4_prefix("10.251.9.0/24"), {}).find("elements"),
            std::string::npos);
}

TEST(NetworkNftTest, EndpointScriptAddsOrDeletesOnlyItsElements) {
  BridgeOptions options{"wt-br", "", "wt_table", "wt-", "/tmp/x.json"};
  EXPECT_EQ(nft_endpoint_ports_script(options, sample_endpoint(), "add"),
            "add element ip wt_table tcp_ports { 49153 : 10.251.9.2 . 80 }\n"
            "add element ip wt_table udp_ports { 8053 : 10.251.9.2 . 53 }\n");
  std::string removal = nft_endpoint_ports_script(options, sample_endpoint(), "delete");
  EXPECT_TRUE(removal.starts_with("delete element ip wt_table tcp_ports {")) << removal;
  Endpoint unpublished = sample_endpoint();
  unpublished.bindings.clear();
  EXPECT_EQ(nft_endpoint_ports_script(options, unpublished, "add"), "");
}

// ---- Real networks ---------------------------------------------------------------------------

using testkit::have_command;
using testkit::shell;

// Joins the network namespace at `netns_path` on this thread (sockets made later live there).
bool join_netns(const std::string& netns_path) {
  int fd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool joined = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return joined;
}

void set_timeouts(int fd) {
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

sockaddr_in socket_address(const std::string& ip, std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  return address;
}

// A TCP or UDP server on port `port` in a network namespace, on its own thread: answers every
// connection (or datagram) with `reply`.
class Listener {
 public:
  Listener(const std::string& netns_path, std::uint16_t port, std::string reply, bool udp = false)
      : reply_(std::move(reply)) {
    std::promise<bool> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, netns_path, port, udp, &ready] {
      if (!join_netns(netns_path)) return ready.set_value(false);
      fd_ = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
      int on = 1;
      setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      sockaddr_in address = socket_address("0.0.0.0", port);
      bool bound = ::bind(fd_.load(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                   (udp || listen(fd_, 16) == 0);
      ready.set_value(bound);
      if (bound) udp ? serve_udp() : serve_tcp();
    });
    ok_ = started.get();
  }

  ~Listener() {
    stop_ = true;
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }

  bool ok() const { return ok_; }

 private:
  void serve_tcp() {
    while (!stop_) {
      int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      (void)!write(client, reply_.data(), reply_.size());
      close(client);
    }
  }

  void serve_udp() {
    while (!stop_) {
      char buffer[512];
      sockaddr_in peer{};
      socklen_t length = sizeof peer;
      ssize_t got =
          recvfrom(fd_, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&peer), &length);
      if (got < 0 || stop_) return;
      sendto(fd_, reply_.data(), reply_.size(), 0, reinterpret_cast<sockaddr*>(&peer), length);
    }
  }

  std::string reply_;
  std::thread thread_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> stop_{false};
  bool ok_ = false;
};

// What a TCP server at ip:port says, connecting from `netns_path` (empty: this host); the
// error text instead when it cannot be reached.
std::string tcp_fetch(const std::string& ip, std::uint16_t port,
                      const std::string& netns_path = "") {
  std::string text;
  std::thread([&] {
    if (!netns_path.empty() && !join_netns(netns_path)) {
      text = "cannot join " + netns_path;
      return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    set_timeouts(fd);
    sockaddr_in address = socket_address(ip, port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      text = "connect: " + std::string(strerror(errno));
      close(fd);
      return;
    }
    char buffer[256];
    ssize_t got = 0;
    while ((got = read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, got);
    close(fd);
  }).join();
  return text;
}

std::string udp_ask(const std::string& ip, std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  set_timeouts(fd);
  sockaddr_in address = socket_address(ip, port);
  sendto(fd, "?", 1, 0, reinterpret_cast<sockaddr*>(&address), sizeof address);
  char buffer[256];
  ssize_t got = recv(fd, buffer, sizeof buffer, 0);
  close(fd);
  return got < 0 ? "recv: " + std::string(strerror(errno)) : std::string(buffer, got);
}

// The host's first non-loopback IPv4 address outside the test subnets, if any.
std::optional<std::string> host_address() {
  auto json = run_checked({"ip", "-j", "-4", "addr", "show", "scope", "global"});
  if (!json) return std::nullopt;
  std::string text = *json;
  std::size_t at = 0;
  while ((at = text.find("\"local\":\"", at)) != std::string::npos) {
    at += 9;
    std::string ip = text.substr(at, text.find('"', at) - at);
    if (!ip.starts_with("10.251.") && !ip.starts_with("127.")) return ip;
  }
  return std::nullopt;
}

class BridgeNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!have_command("ip", "-V") || !have_command("nft", "-v")) GTEST_SKIP() << "needs ip and nft";
    static std::atomic<int> counter{0};
    int test_idx = counter++;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%04x%x", static_cast<unsigned>(getpid()) & 0xffff,
                  test_idx & 0xf);
    options_.name = std::string("wt-") + tag;
    options_.nft_table = std::string("wharf_test_") + tag;
    options_.netns_prefix = std::string("wt-") + tag + "-";
    options_.subnet = "10.251." + std::to_string((getpid() * 16 + test_idx) % 250 + 1) + ".0/24";
    std::string dir = "/tmp/wharf-network-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    options_.state_file = dir_ / "network.json";
    // Below the usual ephemeral range, so the host's own connections do not collide.
    options_.ephemeral_low = 20000 + static_cast<std::uint16_t>(getpid() % 100) * 100;
    options_.ephemeral_high = options_.ephemeral_low + 99;
    static_port_ = options_.ephemeral_high + 1;
    open_network();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    if (network_) {
      auto destroyed = network_->destroy();
      EXPECT_TRUE(destroyed.has_value()) << destroyed.error().message;
      network_.reset();
    }
    // Whatever destroy() missed is a failure, but is removed all the same.
    std::string links = shell("ip -o link show");
    EXPECT_EQ(links.find(options_.name), std::string::npos) << links;
    for (const std::string& veth : veths_) EXPECT_EQ(links.find(veth), std::string::npos) << links;
    std::string namespaces = shell("ip netns list");
    EXPECT_EQ(namespaces.find(options_.netns_prefix), std::string::npos) << namespaces;
    std::string tables = shell("nft list tables");
    EXPECT_EQ(tables.find(options_.nft_table), std::string::npos) << tables;
    EXPECT_FALSE(state_left(options_.state_file));
    shell("ip link del " + options_.name + " 2>/dev/null; nft delete table ip " +
          options_.nft_table + " 2>/dev/null; for ns in $(ip netns list | grep -o '^" +
          options_.netns_prefix + "[^ ]*'); do ip netns del $ns; done");
    for (const std::string& veth : veths_) shell("ip link del " + veth + " 2>/dev/null");
    fs::remove_all(dir_);
  }

  void open_network() {
    auto network = BridgeNetwork::open(options_);
    ASSERT_TRUE(network.has_value()) << network.error().message;
    network_ = std::move(*network);
  }

  Endpoint attach(const std::string& id, const std::vector<PortMapping>& ports = {}) {
    auto endpoint = network_->attach(id, ports);
    EXPECT_TRUE(endpoint.has_value()) << endpoint.error().message;
    if (!endpoint) return {};
    veths_.insert(endpoint->host_veth);
    return *endpoint;
  }

  bool netns_exists(const std::string& id) {
    return fs::exists("/run/netns/" + options_.netns_prefix + id);
  }
  bool link_exists(const std::string& name) { return fs::exists("/sys/class/net/" + name); }

  BridgeOptions options_;
  fs::path dir_;
  std::uint16_t static_port_ = 0;
  std::unique_ptr<BridgeNetwork> network_;
  std::set<std::string> veths_;
};

TEST_F(BridgeNetworkTest, TwoEndpointsGetDistinctAddressesAndReachEachOther) {
  Endpoint first = attach("first");
  Endpoint second = attach("second");
  ASSERT_FALSE(::testing::Test::HasFailure());
  // On return the host end runs and forwards as a bridge port (state 3), so no packet is lost.
  auto read_line = [](const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
  };
  EXPECT_EQ(read_line("/sys/class/net/" + second.host_veth + "/operstate"), "up");
  EXPECT_EQ(read_line("/sys/class/net/" + options_.name + "/brif/" + second.host_veth + "/state"),
            "3");
  Ipv4Prefix subnet = *parse_ipv4_prefix(options_.subnet);
  EXPECT_NE(first.ip, second.ip);
  EXPECT_TRUE(subnet.contains(*parse_ipv4(first.ip))) << first.ip;
  EXPECT_TRUE(subnet.contains(*parse_ipv4(second.ip))) << second.ip;
  EXPECT_EQ(first.gateway, format_ipv4(gateway_address(subnet)));
  EXPECT_EQ(first.netns_path, "/run/netns/" + options_.netns_prefix + "first");
  EXPECT_TRUE(fs::exists("/sys/class/net/" + options_.name + "/brif/" + first.host_veth));
  EXPECT_EQ(network_->endpoints().size(), 2u);

  std::string ping = shell("ip netns exec " + options_.netns_prefix +
                           "first busybox ping -c1 -W2 " + second.ip + " && echo PING-OK");
  EXPECT_NE(ping.find("PING-OK"), std::string::npos) << ping;
  Listener listener(second.netns_path, 80, "hi from second\n");
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ(tcp_fetch(second.ip, 80, first.netns_path), "hi from second\n");
  EXPECT_EQ(tcp_fetch(second.ip, 80), "hi from second\n");  // the host reaches it too
  // The default route goes through the gateway.
  std::string routes = shell("ip -n " + options_.netns_prefix + "first route show default");
  EXPECT_NE(routes.find("via " + first.gateway), std::string::npos) << routes;
}

TEST_F(BridgeNetworkTest, AttachIsIdempotent) {
  Endpoint first = attach("web", {{80, 0, "tcp"}});
  Endpoint again = attach("web", {{80, 0, "tcp"}});
  EXPECT_EQ(first, again);
  EXPECT_EQ(network_->endpoints().size(), 1u);
}

TEST_F(BridgeNetworkTest, DynamicPortReachesTheContainerFromLoopbackAndHostAddress) {
  Endpoint web = attach("web", {{80, 0, "tcp"}, {53, 0, "udp"}});
  ASSERT_EQ(web.bindings.size(), 2u);
  const PortBinding& tcp = web.bindings[0];
  EXPECT_EQ(tcp.protocol, "tcp");
  EXPECT_EQ(tcp.container_port, 80);
  EXPECT_GE(tcp.host_port, options_.ephemeral_low);
  EXPECT_LE(tcp.host_port, options_.ephemeral_high);
  EXPECT_EQ(tcp.bind_ip, "0.0.0.0");

  Listener listener(web.netns_path, 80, "hi\n");
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ(tcp_fetch("127.0.0.1", tcp.host_port), "hi\n");
  EXPECT_EQ(tcp_fetch(web.gateway, tcp.host_port), "hi\n");
  if (auto address = host_address()) {
    EXPECT_EQ(tcp_fetch(*address, tcp.host_port), "hi\n") << "via " << *address;
  }
  // Another container reaches it through the host's published port (hairpin).
  Endpoint client = attach("client");
  EXPECT_EQ(tcp_fetch(web.gateway, tcp.host_port, client.netns_path), "hi\n");

  Listener udp_listener(web.netns_path, 53, "udp hi", true);
  ASSERT_TRUE(udp_listener.ok());
  EXPECT_EQ(udp_ask("127.0.0.1", web.bindings[1].host_port), "udp hi");
}

TEST_F(BridgeNetworkTest, APortRangeGetsConsecutiveHostPortsAroundAHeldOne) {
  // A host process holds the second port of the range: the block moves past it instead of
  // coming out with a gap.
  int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto held_port = static_cast<std::uint16_t>(options_.ephemeral_low + 1);
  sockaddr_in address = socket_address("0.0.0.0", held_port);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  Endpoint web = attach("web", {{8000, 0, "tcp"}, {8001, 0, "tcp", true}, {8002, 0, "tcp", true}});
  close(holder);
  ASSERT_EQ(web.bindings.size(), 3u);
  for (std::size_t index = 0; index < 3; ++index) {
    EXPECT_EQ(web.bindings[index].container_port, 8000 + index);
    EXPECT_EQ(web.bindings[index].host_port, web.bindings[0].host_port + index);
  }
  EXPECT_GT(web.bindings[0].host_port, held_port);

  // A range longer than the whole ephemeral span cannot be placed.
  std::vector<PortMapping> huge;
  for (std::uint16_t port = 1; port <= 101; ++port) huge.push_back({port, 0, "tcp", port != 1});
  auto refused = network_->attach("huge", huge);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kResourceInUse) << refused.error().message;
  EXPECT_NE(refused.error().message.find("101 consecutive"), std::string::npos)
      << refused.error().message;
}

TEST_F(BridgeNetworkTest, StaticHostPortTakenTwiceIsResourceInUse) {
  Endpoint first = attach("first", {{80, static_port_, "tcp"}});
  ASSERT_EQ(first.bindings.size(), 1u);
  EXPECT_EQ(first.bindings[0].host_port, static_port_);

  auto second = network_->attach("second", {{8080, static_port_, "tcp"}});
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kResourceInUse) << second.error().message;
  EXPECT_FALSE(netns_exists("second"));
  EXPECT_FALSE(link_exists(host_veth_name(options_.name, "second")));
  // The same number over udp is another port.
  attach("third", {{53, static_port_, "udp"}});

  // A port a host process holds is in use too.
  int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = socket_address("0.0.0.0", static_cast<std::uint16_t>(static_port_ + 1));
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto held =
      network_->attach("fourth", {{80, static_cast<std::uint16_t>(static_port_ + 1), "tcp"}});
  close(holder);
  ASSERT_FALSE(held.has_value());
  EXPECT_EQ(held.error().code, ErrorCode::kResourceInUse) << held.error().message;
  EXPECT_EQ(network_->endpoints().size(), 2u);
}

TEST_F(BridgeNetworkTest, DetachFreesTheAddressAndPort) {
  Endpoint first = attach("first", {{80, static_port_, "tcp"}});
  Endpoint stays = attach("stays", {{80, 0, "tcp"}});
  ASSERT_TRUE(network_->detach("first").has_value());
  EXPECT_FALSE(netns_exists("first"));
  EXPECT_FALSE(link_exists(first.host_veth));
  EXPECT_EQ(network_->endpoints().size(), 1u);
  EXPECT_TRUE(network_->detach("first").has_value());  // unknown ids too
  std::string rules = shell("nft list table ip " + options_.nft_table);
  EXPECT_EQ(rules.find(std::to_string(static_port_) + " :"), std::string::npos) << rules;
  // Only the detached endpoint's ports went.
  EXPECT_NE(rules.find(std::to_string(stays.bindings[0].host_port) + " : " + stays.ip),
            std::string::npos)
      << rules;
  ASSERT_TRUE(network_->detach("stays").has_value());

  // A table removed from outside (`nft flush ruleset`) is rebuilt by the next attach.
  shell("nft delete table ip " + options_.nft_table);
  Endpoint second = attach("second", {{80, static_port_, "tcp"}});
  EXPECT_EQ(second.ip, first.ip);
  EXPECT_EQ(second.bindings[0].host_port, static_port_);
  Listener listener(second.netns_path, 80, "second\n");
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ(tcp_fetch("127.0.0.1", static_port_), "second\n");
}

TEST_F(BridgeNetworkTest, ReopenAfterACrashAdoptsTheState) {
  Endpoint web = attach("web", {{80, 0, "tcp"}});
  network_.reset();  // the agent dies: no detach, no destroy
  // Meanwhile someone turns the spanning tree on; the bridge is taken back without it.
  std::string stp = "/sys/class/net/" + options_.name + "/bridge/stp_state";
  ASSERT_EQ(shell("echo 1 > " + stp + " && cat " + stp), "1\n");
  open_network();
  EXPECT_EQ(shell("cat " + stp), "0\n");
  ASSERT_EQ(network_->endpoints().size(), 1u);
  EXPECT_EQ(network_->endpoints()[0], web);
  Listener listener(web.netns_path, 80, "still here\n");
  ASSERT_TRUE(listener.ok());
  EXPECT_EQ(tcp_fetch("127.0.0.1", web.bindings[0].host_port), "still here\n");
  EXPECT_EQ(attach("web", {{80, 0, "tcp"}}), web);
  auto other = network_->attach("other", {{80, web.bindings[0].host_port, "tcp"}});
  ASSERT_FALSE(other.has_value());  // the port is still allocated
  EXPECT_EQ(other.error().code, ErrorCode::kResourceInUse) << other.error().message;
}

TEST_F(BridgeNetworkTest, ReopenWithAnotherSubnetIsRefusedWhileEndpointsRemain) {
  attach("web");
  network_.reset();
  BridgeOptions other = options_;
  other.subnet = "10.251.251.0/24";
  auto reopened = BridgeNetwork::open(other);
  ASSERT_FALSE(reopened.has_value());
  EXPECT_EQ(reopened.error().code, ErrorCode::kInvalidParameter) << reopened.error().message;
  // Without a subnet it takes the one it had.
  std::string had = options_.subnet;
  options_.subnet.clear();
  open_network();
  EXPECT_EQ(network_->subnet(), had);
  EXPECT_EQ(network_->endpoints().size(), 1u);
}

TEST_F(BridgeNetworkTest, ReconcileRemovesWhatIsNotLive) {
  attach("live");
  Endpoint dead = attach("dead", {{80, 0, "tcp"}});
  // A namespace that an attach cut short by a crash left behind: the state does not know it.
  shell("ip netns add " + options_.netns_prefix + "ghost");
  ASSERT_TRUE(netns_exists("ghost"));
  auto reconciled = network_->reconcile({"live"});
  ASSERT_TRUE(reconciled.has_value()) << reconciled.error().message;
  ASSERT_EQ(network_->endpoints().size(), 1u);
  EXPECT_EQ(network_->endpoints()[0].id, "live");
  EXPECT_TRUE(netns_exists("live"));
  EXPECT_FALSE(netns_exists("dead"));
  EXPECT_FALSE(netns_exists("ghost"));
  EXPECT_FALSE(link_exists(dead.host_veth));
}

TEST_F(BridgeNetworkTest, ConcurrentAttachesGetDistinctAddresses) {
  std::vector<std::future<Result<Endpoint>>> attaches;
  for (int task_idx = 0; task_idx < 4; ++task_idx) {
    attaches.push_back(std::async(std::launch::async, [this, task_idx] {
      return network_->attach("task" + std::to_string(task_idx), {{80, 0, "tcp"}});
    }));
  }
  std::set<std::string> addresses;
  std::set<std::uint16_t> ports;
  for (auto& attached : attaches) {
    auto endpoint = attached.get();
    ASSERT_TRUE(endpoint.has_value()) << endpoint.error().message;
    veths_.insert(endpoint->host_veth);
    addresses.insert(endpoint->ip);
    ports.insert(endpoint->bindings[0].host_port);
  }
  EXPECT_EQ(addresses.size(), 4u);
  EXPECT_EQ(ports.size(), 4u);
}

TEST_F(BridgeNetworkTest, RejectsBadIdsAndMappings) {
  auto bad_id = network_->attach("a/b", {});
  ASSERT_FALSE(bad_id.has_value());
  EXPECT_EQ(bad_id.error().code, ErrorCode::kInvalidParameter);
  auto bad_protocol = network_->attach("web", {{80, 0, "sctp"}});
  ASSERT_FALSE(bad_protocol.has_value());
  EXPECT_EQ(bad_protocol.error().code, ErrorCode::kInvalidParameter);
  EXPECT_FALSE(netns_exists("web"));
}

TEST_F(BridgeNetworkTest, AFailedAttachUndoesWhatItSetUp) {
  shell("ip link del " + options_.name);  // someone removed the bridge
  auto attached = network_->attach("web", {{80, static_port_, "tcp"}});
  ASSERT_FALSE(attached.has_value());
  EXPECT_NE(attached.error().message.find("looking up link " + options_.name), std::string::npos)
      << attached.error().message;
  EXPECT_NE(attached.error().message.find(options_.name), std::string::npos)
      << attached.error().message;
  EXPECT_FALSE(netns_exists("web"));
  EXPECT_FALSE(link_exists(host_veth_name(options_.name, "web")));
  EXPECT_TRUE(network_->endpoints().empty());
  // Its port was released: a host process may bind it.
  int socket_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = socket_address("0.0.0.0", static_port_);
  EXPECT_EQ(bind(socket_fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  close(socket_fd);
}

TEST_F(BridgeNetworkTest, DestroyLeavesNothing) {
  attach("first", {{80, 0, "tcp"}});
  attach("second");
  auto destroyed = network_->destroy();
  ASSERT_TRUE(destroyed.has_value()) << destroyed.error().message;
  EXPECT_FALSE(link_exists(options_.name));
  EXPECT_FALSE(netns_exists("first"));
  EXPECT_FALSE(state_left(options_.state_file));
  EXPECT_FALSE(network_->attach("third", {}).has_value());
  network_.reset();  // TearDown checks links, namespaces and tables
}

}  // namespace
}  // namespace wharf::agent

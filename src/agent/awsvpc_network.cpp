// AwsvpcNetwork, its namespaces and its nft scripts (see awsvpc_network.hpp).
#include "agent/awsvpc_network.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <iterator>
#include <list>
#include <optional>
#include <random>
#include <system_error>
#include <thread>

#include "agent/cgroup_files.hpp"
#include "agent/files.hpp"
#include "agent/layout.hpp"
#include "agent/netns.hpp"
#include "agent/network.hpp"
#include "agent/nftables.hpp"
#include "agent/rtnetlink.hpp"
#include "common/json.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;
using cgroup_files::errno_error;

namespace {

constexpr std::string_view kGateway = "169.254.1.1";
// Every host end has this MAC (as Calico's do): each is a link of its own, and each task's
// permanent neighbour entry for the gateway names it, so a task never has to ARP for it.
constexpr MacAddress kHostVethMac = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
constexpr int kLoopbackIndex = 1;  // lo is ifindex 1 in every network namespace
// How long destroy() and reconcile() wait for the kernel to destroy the veths of the
// namespaces they removed before they delete the veths themselves.
constexpr std::chrono::milliseconds kLinkGoneWait{2000};
constexpr int kStateVersion = 1;
// How long detached endpoints' rules wait for others', to be deleted in one nft call.
constexpr std::chrono::milliseconds kGarbageLinger{100};

bool is_veth_prefix(std::string_view prefix) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return prefix.size() >= 2 && prefix.size() <= 4 && prefix[0] >= 'a' && prefix[0] <= 'z' &&
         std::all_of(prefix.begin(), prefix.end(), lower_alnum);
}

Status validate_options(const AwsvpcOptions& options) {
  if (!is_nft_table_name(options.nft_table)) {
    return invalid("nftables table name '" + options.nft_table +
                   "' is not a letter and up to 63 of [A-Za-z0-9_]");
  }
  if (!is_safe_path_component(options.netns_prefix)) {
    return invalid("netns prefix '" + options.netns_prefix + "' is not [A-Za-z0-9_.-]+");
  }
  if (!is_veth_prefix(options.veth_prefix)) {
    return invalid("veth prefix '" + options.veth_prefix +
                   "' is not 2-4 of [a-z0-9], a letter first");
  }
  if (options.state_file.empty()) return invalid("no state file");
  if (options.mtu != 0 && (options.mtu < 68 || options.mtu > 65535)) {
    return invalid("MTU " + std::to_string(options.mtu) + " is not 68-65535");
  }
  return {};
}

// Not an address a task can hold: this network, loopback, link-local, multicast, broadcast.
bool is_reserved_address(std::uint32_t address) {
  std::uint32_t first = address >> 24;
  return first == 0 || first == 127 || first >= 224 || (address >> 16) == ((169u << 8) | 254u);
}

Status validate_spec(const AwsvpcOptions& options, const AwsvpcSpec& spec) {
  if (spec.id.empty() || !is_safe_path_component(options.netns_prefix + spec.id)) {
    return invalid("endpoint id '" + spec.id + "' is not [A-Za-z0-9_.-]+");
  }
  if (spec.ip.empty()) return {};
  auto address = parse_ipv4(spec.ip);
  if (!address) return std::unexpected(address.error());
  if (is_reserved_address(*address)) return invalid("'" + spec.ip + "' cannot be a task's IP");
  if (!spec.mac.empty()) {
    auto mac = parse_mac(spec.mac);
    if (!mac) return std::unexpected(mac.error());
    if (((*mac)[0] & 1) != 0) return invalid("'" + spec.mac + "' is a multicast MAC address");
  }
  return validate_ingress(spec.ingress);
}

std::string netns_name(const AwsvpcOptions& options, std::string_view id) {
  return options.netns_prefix + std::string(id);
}

// The endpoint that `spec` (validated) describes, but for its host veth's name.
AwsvpcEndpoint endpoint_for(const AwsvpcOptions& options, const AwsvpcSpec& spec) {
  AwsvpcEndpoint endpoint;
  endpoint.id = spec.id;
  endpoint.netns_path = (kNetnsDir / netns_name(options, spec.id)).string();
  if (spec.ip.empty()) {
    endpoint.gateway.clear();
    return endpoint;
  }
  std::uint32_t address = *parse_ipv4(spec.ip);
  endpoint.ip = format_ipv4(address);
  endpoint.mac = spec.mac.empty() ? mac_for_address(address) : lower(spec.mac);
  endpoint.ingress = spec.ingress;
  return endpoint;
}

// ---- nft -----------------------------------------------------------------------------------

// The `ip saddr …` match of a rule: its sources, none inside another, as one anonymous set, so a
// group of a hundred members is one rule, not a hundred ("" for 0.0.0.0/0; none without sources).
std::vector<std::string> source_matches(const std::vector<std::string>& sources) {
  std::vector<Ipv4Prefix> prefixes;
  for (const std::string& source : sources) {
    if (auto prefix = parse_ipv4_prefix(source)) prefixes.push_back(*prefix);
  }
  std::sort(prefixes.begin(), prefixes.end(), [](const Ipv4Prefix& a, const Ipv4Prefix& b) {
    return a.length != b.length ? a.length < b.length : a.address < b.address;
  });
  std::vector<Ipv4Prefix> kept;
  for (const Ipv4Prefix& prefix : prefixes) {
    bool covered = std::any_of(kept.begin(), kept.end(), [&](const Ipv4Prefix& broader) {
      return broader.contains(prefix.address);
    });
    if (!covered) kept.push_back(prefix);
  }
  if (kept.empty()) return {};
  if (kept.front().length == 0) return {""};
  auto text = [](const Ipv4Prefix& prefix) {
    return prefix.length == 32 ? format_ipv4(prefix.address) : prefix.to_string();
  };
  if (kept.size() == 1) return {"ip saddr " + text(kept.front()) + " "};
  std::string set;
  for (const Ipv4Prefix& prefix : kept) set += (set.empty() ? "" : ", ") + text(prefix);
  return {"ip saddr { " + set + " } "};
}

bool is_group_id(std::string_view id) {
  return id.size() > 3 && id.size() <= 40 && id.starts_with("sg-") &&
         std::all_of(id.begin() + 3, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); });
}

// The named set holding a security group's members: "g_sg_0123…".
std::string group_set(std::string_view group_id) {
  std::string name = "g_" + std::string(group_id);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string protocol_match(const IngressRule& rule) {
  if (rule.protocol == "all") return "";
  if (rule.protocol == "icmp") {
    if (rule.icmp_type < 0) return "meta l4proto icmp ";
    std::string match = "icmp type " + std::to_string(rule.icmp_type) + " ";
    if (rule.icmp_code >= 0) match += "icmp code " + std::to_string(rule.icmp_code) + " ";
    return match;
  }
  if (rule.from_port == 0 && rule.to_port == 65535) return "meta l4proto " + rule.protocol + " ";
  std::string ports = std::to_string(rule.from_port);
  if (rule.to_port != rule.from_port) ports += "-" + std::to_string(rule.to_port);
  return rule.protocol + " dport " + ports + " ";
}

// Deletes an endpoint's chain and map elements; adding them first makes the deletes succeed
// when some are gone already (nft 1.0.6 has no `destroy`).
std::string endpoint_removal_script(const AwsvpcOptions& options, const AwsvpcEndpoint& endpoint) {
  std::string table = "inet " + options.nft_table;
  const std::string& chain = endpoint.host_veth;
  std::string source = endpoint.ip + " . \"" + chain + "\"";
  std::string element = "\"" + chain + "\" : jump " + chain;
  std::string veth = "\"" + chain + "\"";
  return "add chain " + table + " " + chain + "\nadd element " + table + " task_ips { " + source +
         " }\nadd element " + table + " veths { " + veth + " }\nadd element " + table +
         " endpoints { " + element + " }\ndelete element " + table + " endpoints { \"" + chain +
         "\" }\ndelete element " + table + " veths { " + veth + " }\ndelete element " + table +
         " task_ips { " + source + " }\ndelete chain " + table + " " + chain + "\n";
}

// lo up with the metadata address; for a task with an IP, the veth pair, the host end's route
// and eth0's address, routes and gateway neighbour.
Status set_up_links(NewNamespace& netns, const AwsvpcEndpoint& endpoint, int mtu) {
  RouteNetlink& inside = netns.netlink;
  if (auto up = inside.set_link_up(kLoopbackIndex); !up) return up;
  std::uint32_t metadata = *parse_ipv4(kMetadataAddress);
  if (auto added = inside.add_address(kLoopbackIndex, metadata, 32, true); !added) return added;
  if (endpoint.ip.empty()) return {};

  std::uint32_t address = *parse_ipv4(endpoint.ip);
  std::uint32_t gateway = *parse_ipv4(kGateway);
  auto host = RouteNetlink::open();
  if (!host) return std::unexpected(host.error());
  VethPair pair{endpoint.host_veth, kHostVethMac,  "eth0", *parse_mac(endpoint.mac), mtu,
                kAwsvpcLinkGroup,   netns.fd.get()};
  if (auto made = host->add_veth_pair(pair); !made) return made;
  auto veth = host->link_index(endpoint.host_veth);
  if (!veth) return std::unexpected(veth.error());
  std::string alias = fs::path(endpoint.netns_path).filename().string();
  if (auto named = host->set_link_alias(*veth, alias); !named) return named;
  fs::path proxy_arp = fs::path("/proc/sys/net/ipv4/conf") / endpoint.host_veth / "proxy_arp";
  if (auto set = write_proc_setting(proxy_arp, "1"); !set) return set;
  if (auto routed = host->add_route(*veth, address, 32); !routed) {
    if (routed.error().code != ErrorCode::kResourceInUse) return routed;
    return fail(ErrorCode::kResourceInUse,
                endpoint.ip + " is routed already on this host (another network's task?)");
  }
  auto eth0 = inside.link_index("eth0");
  if (!eth0) return std::unexpected(eth0.error());
  if (auto up = inside.set_link_up(*eth0); !up) return up;
  if (auto added = inside.add_address(*eth0, address, 32, false); !added) return added;
  if (auto routed = inside.add_route(*eth0, gateway, 32); !routed) return routed;
  if (auto routed = inside.add_route(*eth0, 0, 0, gateway); !routed) return routed;
  if (auto added = inside.add_permanent_neighbour(*eth0, gateway, kHostVethMac); !added) {
    return added;
  }
  if (auto running = inside.await_link_running(*eth0); !running) return running;
  return host->await_link_running(*veth);
}

// Waits for the kernel to destroy `veths` (with their namespaces), then deletes what is left:
// veths of namespaces that some process still holds.
Status await_veths_gone(const std::set<std::string>& veths) {
  auto deadline = std::chrono::steady_clock::now() + kLinkGoneWait;
  auto any_left = [&] { return std::any_of(veths.begin(), veths.end(), link_exists); };
  while (any_left() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!any_left()) return {};
  auto host = RouteNetlink::open();
  if (!host) return std::unexpected(host.error());
  for (const std::string& veth : veths) {
    if (auto deleted = delete_link_named(*host, veth); !deleted) return deleted;
  }
  return {};
}

Status combined(const std::vector<std::string>& errors) {
  if (errors.empty()) return {};
  std::string message;
  for (const std::string& each : errors) message += (message.empty() ? "" : "; ") + each;
  return fail(ErrorCode::kInternal, message);
}

// ---- State ---------------------------------------------------------------------------------

std::uint16_t json_port(const bj::object& object, std::string_view key, std::uint16_t otherwise) {
  std::optional<std::int64_t> number = json::get_int(object, key);
  if (!number || *number < 0 || *number > 65535) return otherwise;
  return static_cast<std::uint16_t>(*number);
}

Result<std::vector<AwsvpcEndpoint>> load_state(const StateFile& file) {
  auto text = file.read();
  if (!text) return std::unexpected(text.error());
  if (!*text) return std::vector<AwsvpcEndpoint>{};
  auto endpoints = parse_awsvpc_state(**text);
  if (!endpoints) {
    return std::unexpected(std::move(endpoints.error()).context(file.path().string()));
  }
  return endpoints;
}

}  // namespace

// ---- Pure parts ----------------------------------------------------------------------------

Status validate_ingress(const std::vector<IngressRule>& ingress) {
  for (const IngressRule& rule : ingress) {
    bool ported = rule.protocol == "tcp" || rule.protocol == "udp";
    if (!ported && rule.protocol != "icmp" && rule.protocol != "all") {
      return invalid("ingress protocol '" + rule.protocol + "' is not tcp, udp, icmp or all");
    }
    if (ported && rule.from_port > rule.to_port) {
      return invalid("ingress port range " + std::to_string(rule.from_port) + "-" +
                     std::to_string(rule.to_port) + " is empty");
    }
    for (const std::string& source : rule.sources) {
      if (auto prefix = parse_ipv4_prefix(source); !prefix) {
        return std::unexpected(std::move(prefix.error()).context("ingress source"));
      }
    }
    for (const std::string& group : rule.source_groups) {
      if (!is_group_id(group)) return invalid("'" + group + "' is not a security group id");
    }
    if (rule.icmp_type < -1 || rule.icmp_type > 255 || rule.icmp_code < -1 ||
        rule.icmp_code > 255 || (rule.icmp_code >= 0 && rule.icmp_type < 0)) {
      return invalid("ICMP type " + std::to_string(rule.icmp_type) + " and code " +
                     std::to_string(rule.icmp_code) +
                     " are not -1 (any) or 0-255, with a code only under a type");
    }
  }
  return {};
}

std::string awsvpc_table_script(const AwsvpcOptions& options) {
  std::string table = "inet " + options.nft_table;
  return "add table " + table + "\ndelete table " + table + "\ntable " + table +
         " {\n"
         // A task's IP with its host veth: an element never stands for two endpoints.
         "  set task_ips { type ipv4_addr . ifname; }\n"
         "  set veths { type ifname; }\n"
         "  map endpoints { type ifname : verdict; }\n"
         // From a task: only its own address (no forged members of a source group), no IPv6.
         "  chain prerouting {\n"
         "    type filter hook prerouting priority raw; policy accept;\n"
         "    iifname @veths ip saddr . iifname != @task_ips drop\n"
         "    iifname @veths meta nfproto ipv6 drop\n"
         "  }\n"
         // To a task: from other tasks and the world (forward) and from the host (output).
         "  chain forward {\n"
         "    type filter hook forward priority filter; policy accept;\n"
         "    oifname vmap @endpoints\n"
         "  }\n"
         "  chain output {\n"
         "    type filter hook output priority filter; policy accept;\n"
         "    oifname vmap @endpoints\n"
         "  }\n"
         // From a task to anything but a task (of any network on this host).
         "  chain postrouting {\n"
         "    type nat hook postrouting priority srcnat; policy accept;\n"
         "    ip saddr . iifname @task_ips oifgroup != " +
         std::to_string(kAwsvpcLinkGroup) +
         " masquerade\n"
         "  }\n"
         "}\n";
}

std::string awsvpc_endpoint_script(const AwsvpcOptions& options, const AwsvpcEndpoint& endpoint) {
  if (endpoint.host_veth.empty()) return "";  // isolated: no traffic reaches it
  std::string table = "inet " + options.nft_table;
  const std::string& chain = endpoint.host_veth;
  std::string add_rule = "add rule " + table + " " + chain + " ";
  std::string script = "add chain " + table + " " + chain + "\nflush chain " + table + " " + chain +
                       "\n" + add_rule + "ct state established,related accept\n";
  std::string sets;
  for (const IngressRule& rule : endpoint.ingress) {
    std::string protocol = protocol_match(rule);
    for (const std::string& source : source_matches(rule.sources)) {
      // Rules are IPv4's: 0.0.0.0/0 or "all" must not admit IPv6 in this inet table.
      script += add_rule + "meta nfproto ipv4 " + source + protocol + "accept\n";
    }
    for (const std::string& group : rule.source_groups) {
      // Created empty if new; set_group_members() fills it.
      sets += "add set " + table + " " + group_set(group) + " { type ipv4_addr; }\n";
      script += add_rule + "ip saddr @" + group_set(group) + " " + protocol + "accept\n";
    }
  }
  script.insert(0, sets);
  script += add_rule + "drop\n";
  script += "add element " + table + " task_ips { " + endpoint.ip + " . \"" + chain + "\" }\n";
  script += "add element " + table + " veths { \"" + chain + "\" }\n";
  script += "add element " + table + " endpoints { \"" + chain + "\" : jump " + chain + " }\n";
  return script;
}

bj::array ingress_rules_json(const std::vector<IngressRule>& ingress) {
  bj::array rules;
  for (const IngressRule& rule : ingress) {
    bj::array sources;
    for (const std::string& source : rule.sources) sources.emplace_back(source);
    bj::array groups;
    for (const std::string& group : rule.source_groups) groups.emplace_back(group);
    rules.push_back(bj::object{{"protocol", rule.protocol},
                               {"fromPort", rule.from_port},
                               {"toPort", rule.to_port},
                               {"sources", std::move(sources)},
                               {"sourceGroups", std::move(groups)},
                               {"icmpType", rule.icmp_type},
                               {"icmpCode", rule.icmp_code}});
  }
  return rules;
}

std::vector<IngressRule> parse_ingress_rules(const bj::array* list) {
  std::vector<IngressRule> rules;
  if (list == nullptr) return rules;
  for (const bj::value& item : *list) {
    if (!item.is_object()) continue;
    const bj::object& object = item.as_object();
    IngressRule rule{json::string_or(object, "protocol", "all"),
                     json_port(object, "fromPort", 0),
                     json_port(object, "toPort", 65535),
                     {}};
    for (auto [key, into] :
         {std::pair{"sources", &rule.sources}, std::pair{"sourceGroups", &rule.source_groups}}) {
      if (const bj::array* strings = json::get_array(object, key)) {
        for (const bj::value& text : *strings) {
          if (text.is_string()) into->emplace_back(text.as_string());
        }
      }
    }
    rule.icmp_type = static_cast<int>(json::get_int(object, "icmpType").value_or(-1));
    rule.icmp_code = static_cast<int>(json::get_int(object, "icmpCode").value_or(-1));
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::string awsvpc_state_json(const std::vector<AwsvpcEndpoint>& endpoints) {
  bj::array list;
  for (const AwsvpcEndpoint& endpoint : endpoints) {
    list.push_back(bj::object{{"id", endpoint.id},
                              {"netns_path", endpoint.netns_path},
                              {"ip", endpoint.ip},
                              {"mac", endpoint.mac},
                              {"host_veth", endpoint.host_veth},
                              {"gateway", endpoint.gateway},
                              {"ingress", ingress_rules_json(endpoint.ingress)}});
  }
  return bj::serialize(bj::object{{"version", kStateVersion}, {"endpoints", std::move(list)}}) +
         "\n";
}

Result<std::vector<AwsvpcEndpoint>> parse_awsvpc_state(std::string_view text) {
  boost::system::error_code error;
  bj::value value = bj::parse(text, error);
  if (error || !value.is_object()) return fail(ErrorCode::kInternal, "not a JSON object");
  const bj::object& root = value.as_object();
  if (json::get_int(root, "version") != kStateVersion) {
    return fail(ErrorCode::kInternal, "not version " + std::to_string(kStateVersion));
  }
  std::vector<AwsvpcEndpoint> endpoints;
  const bj::array* list = json::get_array(root, "endpoints");
  if (list == nullptr) return endpoints;
  for (const bj::value& item : *list) {
    if (!item.is_object()) return fail(ErrorCode::kInternal, "an endpoint is not an object");
    const bj::object& object = item.as_object();
    AwsvpcEndpoint endpoint{json::string_or(object, "id", ""),
                            json::string_or(object, "netns_path", ""),
                            json::string_or(object, "ip", ""),
                            json::string_or(object, "mac", ""),
                            json::string_or(object, "host_veth", ""),
                            json::string_or(object, "gateway", ""),
                            parse_ingress_rules(json::get_array(object, "ingress"))};
    bool isolated = endpoint.ip.empty();
    if (endpoint.id.empty() || endpoint.netns_path.empty() ||
        (!isolated && (!parse_ipv4(endpoint.ip) || endpoint.host_veth.empty()))) {
      return fail(ErrorCode::kInternal, "an endpoint without id, netns path, IP or host veth");
    }
    endpoints.push_back(std::move(endpoint));
  }
  return endpoints;
}

// ---- listen_in_namespace -------------------------------------------------------------------

Result<UniqueFd> listen_in_namespace(const std::string& netns_path, const std::string& address,
                                     std::uint16_t port) {
  std::string doing = "listening on " + address + ":" + std::to_string(port) + " in " + netns_path;
  auto ip = parse_ipv4(address);
  if (!ip) return std::unexpected(std::move(ip.error()).context(doing));
  UniqueFd netns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) {
    return std::unexpected(
        errno_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInternal, doing));
  }
  Result<UniqueFd> listening = fail(ErrorCode::kInternal, doing + ": not run");
  // setns() moves only this short-lived thread; the socket stays in the namespace it was
  // made in.
  std::thread([&] {
    if (::setns(netns.get(), CLONE_NEWNET) != 0) {
      listening = std::unexpected(errno_error(ErrorCode::kInternal, doing + ": setns"));
      return;
    }
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      listening = std::unexpected(errno_error(ErrorCode::kInternal, doing + ": socket"));
      return;
    }
    int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port);
    local.sin_addr.s_addr = htonl(*ip);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
      listening = std::unexpected(errno_error(
          errno == EADDRINUSE ? ErrorCode::kResourceInUse : ErrorCode::kInternal, doing));
      return;
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) {
      listening = std::unexpected(errno_error(ErrorCode::kInternal, doing + ": listen"));
      return;
    }
    listening = std::move(fd);
  }).join();
  return listening;
}

// ---- AwsvpcNetwork -------------------------------------------------------------------------

// One attach, detach or update of an id at a time. Made and destroyed with `lock` held (it
// takes the lock back if the caller let it go meanwhile).
class AwsvpcNetwork::Claim {
 public:
  Claim(AwsvpcNetwork& network, std::unique_lock<std::mutex>& lock, std::string id)
      : network_(network), lock_(lock), id_(std::move(id)) {
    network_.released_.wait(lock_, [&] { return !network_.claimed_.contains(id_); });
    network_.claimed_.insert(id_);
  }
  ~Claim() {
    if (!lock_.owns_lock()) lock_.lock();
    network_.claimed_.erase(id_);
    network_.released_.notify_all();
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;

 private:
  AwsvpcNetwork& network_;
  std::unique_lock<std::mutex>& lock_;
  std::string id_;
};

struct AwsvpcNetwork::NftJob {
  std::string script;
  std::optional<Status> result;
};

AwsvpcNetwork::AwsvpcNetwork(AwsvpcOptions options, int mtu)
    : options_(std::move(options)),
      state_file_(options_.state_file),
      mtu_(mtu),
      veth_seed_(std::random_device{}()) {}

AwsvpcNetwork::~AwsvpcNetwork() {
  stop_collector();
}

Result<std::unique_ptr<AwsvpcNetwork>> AwsvpcNetwork::open(AwsvpcOptions options) {
  std::string doing = "opening awsvpc network " + options.nft_table;
  if (auto valid = validate_options(options); !valid) {
    return std::unexpected(std::move(valid.error()).context(doing));
  }
  if (auto shared = ensure_shared_netns_dir(); !shared) {
    return std::unexpected(std::move(shared.error()).context(doing));
  }
  if (auto set = write_proc_setting("/proc/sys/net/ipv4/ip_forward", "1"); !set) {
    return std::unexpected(std::move(set.error()).context(doing));
  }
  auto mtu = options.mtu != 0 ? Result<int>(options.mtu) : default_mtu();
  if (!mtu) return std::unexpected(std::move(mtu.error()).context(doing));
  std::unique_ptr<AwsvpcNetwork> network(new AwsvpcNetwork(std::move(options), *mtu));
  if (auto loaded = network->load_and_sync(); !loaded) {
    return std::unexpected(std::move(loaded.error()).context(doing));
  }
  network->collector_ = std::thread([raw = network.get()] { raw->collect_garbage(); });
  return network;
}

Status AwsvpcNetwork::load_and_sync() {
  auto endpoints = load_state(state_file_);
  if (!endpoints) return std::unexpected(endpoints.error());
  std::string script = awsvpc_table_script(options_);
  if (auto text = read_text_file(groups_file())) {
    boost::system::error_code error;
    bj::value saved = bj::parse(*text, error);
    if (!error && saved.is_object()) {
      for (const auto& [group, members] : saved.as_object()) {
        if (!members.is_array()) continue;
        auto& list = group_members_[std::string(group)];
        for (const auto& member : members.as_array()) {
          if (member.is_string()) list.emplace_back(member.as_string());
        }
      }
      if (auto groups = group_members_script(group_members_)) script += *groups;
    }
  }
  std::unique_lock lock(mutex_);  // nobody else has the network yet: held throughout
  for (AwsvpcEndpoint& endpoint : *endpoints) {
    // Gone with a reboot (or by hand): nothing to adopt; reconcile() removes what is left.
    std::error_code error;
    if (!fs::exists(endpoint.netns_path, error)) continue;
    script += awsvpc_endpoint_script(options_, endpoint);
    if (!endpoint.ip.empty()) ip_owners_[endpoint.ip] = endpoint.id;
    std::string id = endpoint.id;
    endpoints_.emplace(std::move(id), std::move(endpoint));
  }
  // The whole table anew, from the state: whatever a crash left half done goes.
  if (auto synced = run_nft_setup_script(script); !synced) {
    return std::unexpected(
        std::move(synced.error()).context("writing nftables table inet " + options_.nft_table));
  }
  std::error_code error;
  fs::create_directories(options_.state_file.parent_path(), error);
  return save_locked();
}

Status AwsvpcNetwork::save_locked() {
  std::vector<AwsvpcEndpoint> list;
  for (const auto& [id, endpoint] : endpoints_) list.push_back(endpoint);
  // The namespaces do not outlive the host either: surviving the agent's death is enough.
  auto saved = state_file_.write(awsvpc_state_json(list), Durability::kProcess);
  if (!saved) return std::unexpected(std::move(saved.error()).context("saving awsvpc state"));
  return {};
}

Status AwsvpcNetwork::apply_nft(std::string script) {
  NftJob job{std::move(script), std::nullopt};
  std::unique_lock lock(nft_mutex_);
  nft_queue_.push_back(&job);
  nft_idle_.wait(lock, [&] { return job.result.has_value() || !nft_running_; });
  if (job.result) return *job.result;
  // This caller runs the next batch: its own script and whatever queued up meanwhile.
  nft_running_ = true;
  std::vector<NftJob*> batch = std::exchange(nft_queue_, {});
  lock.unlock();
  std::string all;
  for (const NftJob* each : batch) all += each->script;
  Status status = run_nft_script(all);
  std::vector<Status> results;
  if (!status && batch.size() > 1) {
    // One transaction failed, so nothing was applied: each alone, so only the bad one fails.
    for (NftJob* each : batch) results.push_back(run_nft_script(each->script));
  } else {
    results.assign(batch.size(), status);
  }
  lock.lock();  // waiters read their results under it
  for (std::size_t job_idx = 0; job_idx < batch.size(); ++job_idx) {
    batch[job_idx]->result = std::move(results[job_idx]);
  }
  nft_running_ = false;
  nft_idle_.notify_all();
  return *job.result;
}

void AwsvpcNetwork::discard_rules(const std::vector<AwsvpcEndpoint>& endpoints) {
  std::lock_guard lock(garbage_mutex_);
  for (const AwsvpcEndpoint& endpoint : endpoints) {
    if (!endpoint.host_veth.empty())
      garbage_.push_back(endpoint_removal_script(options_, endpoint));
  }
  garbage_ready_.notify_all();
}

void AwsvpcNetwork::collect_garbage() {
  std::unique_lock lock(garbage_mutex_);
  while (true) {
    garbage_ready_.wait(lock, [&] { return stopping_ || !garbage_.empty(); });
    if (garbage_.empty()) return;  // stopping, and all collected
    // Gathers what follows too: while nft waits out the deletions' grace period, attaches'
    // commits wait, so fewer of those waits are better.
    garbage_ready_.wait_for(lock, kGarbageLinger, [&] { return stopping_; });
    std::vector<std::string> scripts = std::exchange(garbage_, {});
    lock.unlock();
    std::string all;
    for (const std::string& script : scripts) all += script;
    Status status = run_nft_script(all);
    for (std::size_t script_idx = 0; !status && script_idx < scripts.size(); ++script_idx) {
      if (auto removed = run_nft_script(scripts[script_idx]); !removed) {
        // Unreachable leftovers (their veths are gone): the next open() rewrites the table.
        spdlog::warn("awsvpc network {}: removing a detached endpoint's rules: {}",
                     options_.nft_table, removed.error().message);
      }
    }
    lock.lock();
  }
}

void AwsvpcNetwork::stop_collector() {
  {
    std::lock_guard lock(garbage_mutex_);
    stopping_ = true;
  }
  garbage_ready_.notify_all();
  if (collector_.joinable()) collector_.join();
}

std::string AwsvpcNetwork::fresh_veth_name_locked(const std::string& id) {
  // Never the name of a veth that is still there: that of a namespace the kernel is still
  // destroying (the same id attached again at once), or another network's.
  while (true) {
    std::string salted =
        id + "\n" + std::to_string(veth_seed_) + "\n" + std::to_string(veths_made_++);
    std::string name = host_veth_name(options_.netns_prefix, salted, options_.veth_prefix);
    bool ours = std::any_of(endpoints_.begin(), endpoints_.end(),
                            [&](const auto& entry) { return entry.second.host_veth == name; });
    if (!ours && !link_exists(name)) return name;
  }
}

Result<AwsvpcEndpoint> AwsvpcNetwork::attach(const AwsvpcSpec& spec) {
  std::string doing = "attaching " + spec.id + " to awsvpc network " + options_.nft_table;
  if (auto valid = validate_spec(options_, spec); !valid) {
    return std::unexpected(std::move(valid.error()).context(doing));
  }
  AwsvpcEndpoint wanted = endpoint_for(options_, spec);
  std::unique_lock lock(mutex_);
  Claim claim(*this, lock, spec.id);
  if (destroyed_) return fail(ErrorCode::kInternal, doing + ": the network was destroyed");
  if (auto found = endpoints_.find(spec.id); found != endpoints_.end()) {
    AwsvpcEndpoint current = found->second;
    if (current.ip != wanted.ip || (!spec.mac.empty() && current.mac != wanted.mac)) {
      return fail(ErrorCode::kResourceInUse,
                  doing + ": it is attached already, with IP '" + current.ip + "'");
    }
    if (current.ip.empty() || current.ingress == wanted.ingress) return current;
    current.ingress = wanted.ingress;
    lock.unlock();
    auto updated = update_claimed(current);
    if (!updated) return std::unexpected(std::move(updated.error()).context(doing));
    return current;
  }
  if (!wanted.ip.empty()) {
    if (auto owner = ip_owners_.find(wanted.ip); owner != ip_owners_.end()) {
      return fail(ErrorCode::kResourceInUse,
                  doing + ": " + wanted.ip + " is attached already, to " + owner->second);
    }
    ip_owners_[wanted.ip] = wanted.id;
    wanted.host_veth = fresh_veth_name_locked(wanted.id);
  }
  lock.unlock();
  Status attached = attach_claimed(wanted);
  lock.lock();
  if (attached) {
    endpoints_[wanted.id] = wanted;
    if (auto saved = save_locked(); !saved) {
      endpoints_.erase(wanted.id);
      lock.unlock();
      (void)remove_endpoints({wanted});
      discard_rules({wanted});
      lock.lock();
      attached = std::unexpected(saved.error());
    }
  }
  if (!attached) {
    ip_owners_.erase(wanted.ip);
    return std::unexpected(std::move(attached.error()).context(doing));
  }
  return wanted;
}

Status AwsvpcNetwork::attach_claimed(const AwsvpcEndpoint& endpoint) {
  bool routed = !endpoint.ip.empty();
  // The namespace of an attach a crash cut short.
  if (auto removed = remove_netns(endpoint.netns_path); !removed) return removed;
  // The rules first, so that no packet reaches the task before them.
  if (routed) {
    if (auto ruled = apply_nft(awsvpc_endpoint_script(options_, endpoint)); !ruled) return ruled;
  }
  auto undo = [&](Error error) -> Status {
    std::vector<std::string> problems;
    if (routed && link_exists(endpoint.host_veth)) {
      // Deleted here rather than with the namespace: the IP's route must be gone on return.
      auto host = RouteNetlink::open();
      Status deleted = host ? delete_link_named(*host, endpoint.host_veth)
                            : Status(std::unexpected(host.error()));
      if (!deleted) problems.push_back(deleted.error().message);
    }
    if (auto removed = remove_netns(endpoint.netns_path); !removed) {
      problems.push_back(removed.error().message);
    }
    if (routed) {
      auto unruled = apply_nft(endpoint_removal_script(options_, endpoint));
      if (!unruled) problems.push_back(unruled.error().message);
    }
    if (auto failed = combined(problems); !failed) {
      error.message += " (and undoing: " + failed.error().message + ")";
    }
    return std::unexpected(std::move(error));
  };
  auto netns = create_netns(endpoint.netns_path);
  if (!netns) return undo(std::move(netns.error()));
  if (auto set_up = set_up_links(*netns, endpoint, mtu_); !set_up) {
    return undo(std::move(set_up.error()));
  }
  return {};
}

Status AwsvpcNetwork::update_claimed(const AwsvpcEndpoint& endpoint) {
  if (auto ruled = apply_nft(awsvpc_endpoint_script(options_, endpoint)); !ruled) return ruled;
  std::lock_guard lock(mutex_);
  endpoints_[endpoint.id] = endpoint;
  return save_locked();
}

Result<std::string> AwsvpcNetwork::group_members_script(
    const std::map<std::string, std::vector<std::string>>& groups) const {
  std::string table = "inet " + options_.nft_table;
  std::string script;
  for (const auto& [group, members] : groups) {
    if (!is_group_id(group)) return invalid("'" + group + "' is not a security group id");
    std::string set = table + " " + group_set(group);
    script += "add set " + set + " { type ipv4_addr; }\nflush set " + set + "\n";
    std::string elements;
    for (const std::string& member : members) {
      auto address = parse_ipv4(member.substr(0, member.find('/')));
      if (!address) return std::unexpected(address.error());
      elements += (elements.empty() ? "" : ", ") + format_ipv4(*address);
    }
    if (!elements.empty()) script += "add element " + set + " { " + elements + " }\n";
  }
  return script;
}

fs::path AwsvpcNetwork::groups_file() const {
  fs::path file = options_.state_file;
  file += ".groups";
  return file;
}

Status AwsvpcNetwork::set_group_members(
    const std::map<std::string, std::vector<std::string>>& groups) {
  // Addresses as nft prints them, in order, so that what changed is a set difference.
  std::map<std::string, std::vector<std::string>> wanted;
  for (const auto& [group, members] : groups) {
    if (!is_group_id(group)) return invalid("'" + group + "' is not a security group id");
    auto& list = wanted[group];
    for (const std::string& member : members) {
      auto address = parse_ipv4(member.substr(0, member.find('/')));
      if (!address) return std::unexpected(address.error());
      list.push_back(format_ipv4(*address));
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  std::lock_guard lock(groups_mutex_);
  // Only the difference: a new member is one element added. Deleting makes nft wait out a
  // kernel grace period (~10 ms, and attaches committing meanwhile wait too), so a whole set is
  // flushed only for a group this network did not know.
  std::string table = "inet " + options_.nft_table;
  std::string script;
  std::map<std::string, std::vector<std::string>> fresh;
  for (const auto& [group, members] : wanted) {
    auto known = group_members_.find(group);
    if (known == group_members_.end()) {
      fresh[group] = members;
      continue;
    }
    std::vector<std::string> added;
    std::vector<std::string> removed;
    std::set_difference(members.begin(), members.end(), known->second.begin(), known->second.end(),
                        std::back_inserter(added));
    std::set_difference(known->second.begin(), known->second.end(), members.begin(), members.end(),
                        std::back_inserter(removed));
    std::string set = table + " " + group_set(group);
    auto elements = [](const std::vector<std::string>& list) {
      std::string text;
      for (const auto& address : list) text += (text.empty() ? "" : ", ") + address;
      return text;
    };
    if (!added.empty()) script += "add element " + set + " { " + elements(added) + " }\n";
    if (!removed.empty()) script += "delete element " + set + " { " + elements(removed) + " }\n";
  }
  if (auto whole = group_members_script(fresh); whole) {
    script += *whole;
  } else {
    return std::unexpected(whole.error());
  }
  if (script.empty()) return {};
  if (auto applied = apply_nft(script); !applied) {
    // The sets may hold anything now: the next call rewrites them whole.
    for (const auto& [group, members] : wanted) group_members_.erase(group);
    return std::unexpected(std::move(applied.error()).context("updating security group members"));
  }
  // Kept beside the state, so a restarted agent's table admits the members before its first
  // word from the control plane.
  for (auto& [group, members] : wanted) group_members_[group] = std::move(members);
  bj::object saved;
  for (const auto& [group, members] : group_members_) {
    bj::array list;
    for (const auto& member : members) list.emplace_back(member);
    saved[group] = std::move(list);
  }
  if (auto written =
          write_file_atomically(groups_file(), bj::serialize(saved), Durability::kProcess);
      !written) {
    spdlog::warn("awsvpc network {}: saving group members: {}", options_.nft_table,
                 written.error().message);
  }
  return {};
}

Status AwsvpcNetwork::update_ingress(const std::string& id,
                                     const std::vector<IngressRule>& ingress) {
  std::string doing = "updating the ingress rules of " + id;
  if (auto valid = validate_ingress(ingress); !valid) {
    return std::unexpected(std::move(valid.error()).context(doing));
  }
  std::unique_lock lock(mutex_);
  Claim claim(*this, lock, id);
  auto found = endpoints_.find(id);
  if (found == endpoints_.end()) {
    return fail(ErrorCode::kNotFound,
                doing + ": no such endpoint in awsvpc network " + options_.nft_table);
  }
  AwsvpcEndpoint updated = found->second;
  if (updated.ip.empty() || updated.ingress == ingress) return {};  // isolated: nothing reaches it
  updated.ingress = ingress;
  lock.unlock();
  if (auto done = update_claimed(updated); !done) {
    return std::unexpected(std::move(done.error()).context(doing));
  }
  return {};
}

Status AwsvpcNetwork::detach(const std::string& id) {
  std::unique_lock lock(mutex_);
  Claim claim(*this, lock, id);
  auto found = endpoints_.find(id);
  if (found == endpoints_.end()) return {};
  AwsvpcEndpoint endpoint = found->second;
  lock.unlock();
  if (auto removed = remove_endpoints({endpoint}); !removed) {
    return std::unexpected(
        std::move(removed.error())
            .context("detaching " + id + " from awsvpc network " + options_.nft_table));
  }
  discard_rules({endpoint});
  lock.lock();
  endpoints_.erase(id);
  ip_owners_.erase(endpoint.ip);
  return save_locked();
}

Status AwsvpcNetwork::remove_endpoints(const std::vector<AwsvpcEndpoint>& endpoints) {
  std::vector<std::string> errors;
  std::optional<RouteNetlink> host;
  for (const AwsvpcEndpoint& endpoint : endpoints) {
    if (!endpoint.ip.empty()) {
      // The route first: the IP stops reaching the task at once, and may be attached again
      // while the kernel is still destroying the namespace and its veth.
      if (!host) {
        auto opened = RouteNetlink::open();
        if (!opened) return std::unexpected(opened.error());
        host.emplace(std::move(*opened));
      }
      auto index = host->link_index(endpoint.host_veth);
      auto deleted = index ? host->delete_route(*index, *parse_ipv4(endpoint.ip), 32)
                           : Status(std::unexpected(index.error()));
      if (!deleted && deleted.error().code != ErrorCode::kNotFound) {
        errors.push_back(deleted.error().message);
      }
    }
    if (auto removed = remove_netns(endpoint.netns_path); !removed) {
      errors.push_back(removed.error().message);
    }
  }
  return combined(errors);
}

Status AwsvpcNetwork::reconcile(const std::set<std::string>& live) {
  std::string doing = "reconciling awsvpc network " + options_.nft_table;
  std::unique_lock lock(mutex_);
  std::vector<std::string> dead_ids;
  for (const auto& [id, endpoint] : endpoints_) {
    if (!live.contains(id)) dead_ids.push_back(id);
  }
  std::list<Claim> claims;
  std::vector<AwsvpcEndpoint> dead;
  for (const std::string& id : dead_ids) {
    claims.emplace_back(*this, lock, id);
    if (auto found = endpoints_.find(id); found != endpoints_.end()) dead.push_back(found->second);
  }
  lock.unlock();
  std::vector<std::string> errors;
  if (auto removed = remove_endpoints(dead); !removed) errors.push_back(removed.error().message);
  discard_rules(dead);
  lock.lock();
  for (const AwsvpcEndpoint& endpoint : dead) {
    endpoints_.erase(endpoint.id);
    ip_owners_.erase(endpoint.ip);
  }
  if (auto saved = save_locked(); !saved) errors.push_back(saved.error().message);
  Keep keep = keep_locked();
  for (const AwsvpcEndpoint& endpoint : dead) keep.busy_ids.erase(endpoint.id);
  lock.unlock();
  if (auto strays = remove_strays(dead, keep); !strays) errors.push_back(strays.error().message);
  if (auto failed = combined(errors); !failed) {
    return std::unexpected(std::move(failed.error()).context(doing));
  }
  return {};
}

AwsvpcNetwork::Keep AwsvpcNetwork::keep_locked() const {
  Keep keep{claimed_, {}};
  for (const auto& [id, endpoint] : endpoints_) {
    keep.endpoints.emplace(id, endpoint.host_veth);
  }
  return keep;
}

Status AwsvpcNetwork::remove_strays(const std::vector<AwsvpcEndpoint>& removed, const Keep& keep) {
  auto kept_id = [&](const std::string& id) {
    return keep.busy_ids.contains(id) || keep.endpoints.contains(id);
  };
  std::vector<std::string> errors;
  std::set<std::string> dying;  // veths that go with namespaces removed just now
  for (const AwsvpcEndpoint& endpoint : removed) {
    if (!endpoint.host_veth.empty()) dying.insert(endpoint.host_veth);
  }
  std::set<std::string> stray_namespaces;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(kNetnsDir, error)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(options_.netns_prefix)) continue;
    if (kept_id(name.substr(options_.netns_prefix.size()))) continue;
    if (auto gone = remove_netns(entry.path()); !gone) errors.push_back(gone.error().message);
    stray_namespaces.insert(name);
  }
  // Host ends named for this network (their alias is their namespace's name) that no endpoint
  // owns: those of namespaces removed just now go with them; the others' namespaces are gone
  // already, held by some process: they are deleted now.
  std::set<std::string> orphans;
  for (const auto& entry : fs::directory_iterator(kSysNet, error)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(options_.veth_prefix) || dying.contains(name)) continue;
    std::string alias_file = read_text_file(entry.path() / "ifalias").value_or("");
    std::string netns(trim(alias_file));
    if (!netns.starts_with(options_.netns_prefix)) continue;
    std::string id = netns.substr(options_.netns_prefix.size());
    auto owner = keep.endpoints.find(id);
    if (keep.busy_ids.contains(id) || (owner != keep.endpoints.end() && owner->second == name)) {
      continue;
    }
    (stray_namespaces.contains(netns) ? dying : orphans).insert(name);
  }
  if (!orphans.empty()) {
    auto host = RouteNetlink::open();
    for (const std::string& veth : orphans) {
      Status deleted =
          host ? delete_link_named(*host, veth) : Status(std::unexpected(host.error()));
      if (!deleted) errors.push_back(deleted.error().message);
    }
  }
  if (auto gone = await_veths_gone(dying); !gone) errors.push_back(gone.error().message);
  return combined(errors);
}

Status AwsvpcNetwork::destroy() {
  std::string doing = "destroying awsvpc network " + options_.nft_table;
  std::unique_lock lock(mutex_);
  destroyed_ = true;  // no attach from here on
  released_.wait(lock, [&] { return claimed_.empty(); });
  std::vector<AwsvpcEndpoint> all;
  for (const auto& [id, endpoint] : endpoints_) all.push_back(endpoint);
  lock.unlock();
  std::vector<std::string> errors;
  if (auto removed = remove_endpoints(all); !removed) errors.push_back(removed.error().message);
  // Every chain and element goes with the table, in one nft call: detached ones' too.
  {
    std::lock_guard garbage_lock(garbage_mutex_);
    garbage_.clear();
  }
  stop_collector();
  std::string table = "inet " + options_.nft_table;
  if (auto deleted = run_nft_setup_script("add table " + table + "\ndelete table " + table + "\n");
      !deleted) {
    errors.push_back(deleted.error().message);
  }
  lock.lock();
  endpoints_.clear();
  ip_owners_.clear();
  Keep keep = keep_locked();
  lock.unlock();
  if (auto strays = remove_strays(all, keep); !strays) errors.push_back(strays.error().message);
  if (auto removed = state_file_.remove(); !removed) errors.push_back(removed.error().message);
  std::error_code error;
  fs::remove(groups_file(), error);
  if (error) errors.push_back("removing " + groups_file().string() + ": " + error.message());
  if (auto failed = combined(errors); !failed) {
    return std::unexpected(std::move(failed.error()).context(doing));
  }
  return {};
}

std::string AwsvpcNetwork::netns_path(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto found = endpoints_.find(id);
  return found == endpoints_.end() ? std::string() : found->second.netns_path;
}

std::vector<AwsvpcEndpoint> AwsvpcNetwork::endpoints() const {
  std::lock_guard lock(mutex_);
  std::vector<AwsvpcEndpoint> list;
  for (const auto& [id, endpoint] : endpoints_) list.push_back(endpoint);
  return list;
}

}  // namespace wharf::agent

// BridgeNetwork and its pure helpers (see network.hpp).
#include "agent/network.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <system_error>

#include "agent/command.hpp"
#include "agent/files.hpp"
#include "agent/layout.hpp"
#include "agent/netns.hpp"
#include "agent/nftables.hpp"
#include "agent/rtnetlink.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

// Held while an agent picks a subnet and creates its bridge, so two agents never pick one.
const fs::path kHostLockFile = "/run/wharf/network.lock";
constexpr int kDefaultMtu = 1500;
constexpr int kStateVersion = 1;

bool path_exists(const fs::path& path) {
  std::error_code error;
  return fs::exists(path, error);
}

// "veth" and 11 lowercase hex digits, as host_veth_name makes them.
bool is_host_veth_name(std::string_view name) {
  return name.size() == 15 && name.starts_with("veth") &&
         std::all_of(name.begin() + 4, name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool all_name_chars(std::string_view text) {
  return std::all_of(text.begin(), text.end(), is_name_char);
}

Status validate_options(const BridgeOptions& options) {
  if (options.name.empty() || options.name.size() > 15 || !all_name_chars(options.name) ||
      options.name == "." || options.name == "..") {
    return invalid("bridge name '" + options.name + "' is not 1-15 characters of [A-Za-z0-9_.-]");
  }
  if (!is_nft_table_name(options.nft_table)) {
    return invalid("nftables table name '" + options.nft_table +
                   "' is not a letter and up to 63 of [A-Za-z0-9_]");
  }
  if (options.netns_prefix.empty() || !all_name_chars(options.netns_prefix)) {
    return invalid("netns prefix '" + options.netns_prefix + "' is not [A-Za-z0-9_.-]+");
  }
  if (options.state_file.empty()) return invalid("no state file");
  if (options.ephemeral_low == 0 || options.ephemeral_low > options.ephemeral_high) {
    return invalid("ephemeral port range " + std::to_string(options.ephemeral_low) + "-" +
                   std::to_string(options.ephemeral_high) + " is empty");
  }
  if (options.mtu != 0 && (options.mtu < 68 || options.mtu > 65535)) {
    return invalid("MTU " + std::to_string(options.mtu) + " is not 68-65535");
  }
  return {};
}

Status validate_mappings(const std::vector<PortMapping>& ports) {
  for (const PortMapping& port : ports) {
    if (port.protocol != "tcp" && port.protocol != "udp") {
      return invalid("protocol '" + port.protocol + "' is not tcp or udp");
    }
    if (port.container_port == 0) return invalid("container port 0");
  }
  return {};
}

// A socket bound to host port `port`, so no host process can take it while it is mapped (and
// the bind doubles as the check that none has).
Result<UniqueFd> reserve_port(std::uint16_t port, std::string_view protocol) {
  int type = protocol == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  std::string name = std::to_string(port) + "/" + std::string(protocol);
  if (!fd)
    return fail(ErrorCode::kInternal, "reserving host port " + name + ": " + errno_message());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno == EADDRINUSE) {
      return fail(ErrorCode::kResourceInUse, "host port " + name + " is in use on the host");
    }
    return fail(ErrorCode::kInternal, "reserving host port " + name + ": " + errno_message());
  }
  return fd;
}

struct InterfaceAddress {
  std::uint32_t address = 0;
  int length = 32;
};

Result<bj::array> parse_json_array(std::string_view json, std::string_view what) {
  boost::system::error_code error;
  bj::value value = bj::parse(json, error);
  if (error || !value.is_array()) {
    return fail(ErrorCode::kInternal, std::string(what) + " is not a JSON array");
  }
  return std::move(value.as_array());
}

Result<std::vector<InterfaceAddress>> addresses_in_addr_json(std::string_view json) {
  auto interfaces = parse_json_array(json, "`ip -j addr` output");
  if (!interfaces) return std::unexpected(interfaces.error());
  std::vector<InterfaceAddress> addresses;
  for (const bj::value& interface : *interfaces) {
    const bj::value* infos =
        interface.is_object() ? interface.as_object().if_contains("addr_info") : nullptr;
    if (infos == nullptr || !infos->is_array()) continue;
    for (const bj::value& info : infos->as_array()) {
      if (!info.is_object()) continue;
      const bj::object& object = info.as_object();
      const bj::value* family = object.if_contains("family");
      const bj::value* local = object.if_contains("local");
      const bj::value* length = object.if_contains("prefixlen");
      if (family && family->is_string() && family->as_string() != "inet") continue;
      if (!local || !local->is_string() || !length || !length->is_int64()) continue;
      auto address = parse_ipv4(local->as_string());
      if (!address || length->as_int64() < 0 || length->as_int64() > 32) continue;
      addresses.push_back({*address, static_cast<int>(length->as_int64())});
    }
  }
  return addresses;
}

// Every prefix on this host: its interfaces' addresses and routes in every table.
Result<std::vector<Ipv4Prefix>> host_prefixes() {
  auto addr_json = run_checked({"ip", "-j", "-4", "addr", "show"});
  if (!addr_json) return std::unexpected(addr_json.error());
  auto addresses = prefixes_in_addr_json(*addr_json);
  if (!addresses) return std::unexpected(addresses.error());
  auto route_json = run_checked({"ip", "-j", "-4", "route", "show", "table", "all"});
  if (!route_json) return std::unexpected(route_json.error());
  auto routes = prefixes_in_route_json(*route_json);
  if (!routes) return std::unexpected(routes.error());
  addresses->insert(addresses->end(), routes->begin(), routes->end());
  return addresses;
}

std::string ip_batch_text(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// Removes an endpoint's veth (both ends) and netns, where they exist; verified afterwards.
Status remove_links(const std::string& host_veth, const std::string& netns_name) {
  if (link_exists(host_veth)) {
    auto host = RouteNetlink::open();
    if (!host) return std::unexpected(host.error());
    if (auto deleted = delete_link_named(*host, host_veth); !deleted) return deleted;
  }
  if (auto removed = remove_netns(kNetnsDir / netns_name); !removed) return removed;
  if (!link_exists(host_veth) && !path_exists(kNetnsDir / netns_name)) return {};
  return fail(ErrorCode::kInternal,
              "veth " + host_veth + " or netns " + netns_name + " is still there after removal");
}

std::string json_string(const bj::object& object, std::string_view key) {
  const bj::value* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::uint16_t json_port(const bj::object& object, std::string_view key) {
  const bj::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_int64()) return 0;
  std::int64_t port = value->as_int64();
  return port > 0 && port <= 65535 ? static_cast<std::uint16_t>(port) : 0;
}

std::string nft_elements(const std::vector<Endpoint>& endpoints, std::string_view protocol) {
  std::string elements;
  for (const Endpoint& endpoint : endpoints) {
    for (const PortBinding& binding : endpoint.bindings) {
      if (binding.protocol != protocol) continue;
      if (!elements.empty()) elements += ", ";
      elements += std::to_string(binding.host_port) + " : " + endpoint.ip + " . " +
                  std::to_string(binding.container_port);
    }
  }
  return elements;
}

}  // namespace

// ---- Pure helpers ----------------------------------------------------------------------------

std::string Ipv4Prefix::to_string() const {
  return format_ipv4(address) + "/" + std::to_string(length);
}

Result<std::uint32_t> parse_ipv4(std::string_view text) {
  std::uint32_t address = 0;
  const char* at = text.data();
  const char* end = text.data() + text.size();
  for (int octet_idx = 0; octet_idx < 4; ++octet_idx) {
    if (octet_idx > 0) {
      if (at == end || *at != '.')
        return invalid("'" + std::string(text) + "' is not an IPv4 address");
      ++at;
    }
    unsigned octet = 0;
    auto [next, error] = std::from_chars(at, end, octet);
    if (error != std::errc() || next == at || next - at > 3 || octet > 255) {
      return invalid("'" + std::string(text) + "' is not an IPv4 address");
    }
    address = address << 8 | octet;
    at = next;
  }
  if (at != end) return invalid("'" + std::string(text) + "' is not an IPv4 address");
  return address;
}

std::string format_ipv4(std::uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string(address >> 16 & 0xff) + "." +
         std::to_string(address >> 8 & 0xff) + "." + std::to_string(address & 0xff);
}

Ipv4Prefix prefix_of(std::uint32_t address, int length) {
  Ipv4Prefix prefix{0, length};
  prefix.address = address & prefix.mask();
  return prefix;
}

Result<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) {
  std::size_t slash = text.find('/');
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) return std::unexpected(address.error());
  int length = 32;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [next, error] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (error != std::errc() || next != digits.data() + digits.size() || digits.empty() ||
        length < 0 || length > 32) {
      return invalid("'" + std::string(text) + "' is not an IPv4 prefix");
    }
  }
  Ipv4Prefix prefix = prefix_of(*address, length);
  if (prefix.address != *address) {
    return invalid("'" + std::string(text) + "' has host bits set (the prefix is " +
                   prefix.to_string() + ")");
  }
  return prefix;
}

std::optional<Ipv4Prefix> choose_free_subnet(const std::vector<Ipv4Prefix>& in_use) {
  for (std::uint32_t second_octet : {30u, 31u}) {
    for (std::uint32_t third_octet = 0; third_octet < 256; ++third_octet) {
      Ipv4Prefix candidate{(172u << 24) | (second_octet << 16) | (third_octet << 8), 24};
      bool taken = std::any_of(in_use.begin(), in_use.end(),
                               [&](const Ipv4Prefix& used) { return used.overlaps(candidate); });
      if (!taken) return candidate;
    }
  }
  return std::nullopt;
}

Result<std::vector<Ipv4Prefix>> prefixes_in_addr_json(std::string_view json) {
  auto addresses = addresses_in_addr_json(json);
  if (!addresses) return std::unexpected(addresses.error());
  std::vector<Ipv4Prefix> prefixes;
  for (const InterfaceAddress& address : *addresses) {
    prefixes.push_back(prefix_of(address.address, address.length));
  }
  return prefixes;
}

Result<std::vector<Ipv4Prefix>> prefixes_in_route_json(std::string_view json) {
  auto routes = parse_json_array(json, "`ip -j route` output");
  if (!routes) return std::unexpected(routes.error());
  std::vector<Ipv4Prefix> prefixes;
  for (const bj::value& route : *routes) {
    if (!route.is_object()) continue;
    std::string destination = json_string(route.as_object(), "dst");
    if (destination.empty() || destination == "default") continue;
    std::size_t slash = destination.find('/');
    auto address = parse_ipv4(std::string_view(destination).substr(0, slash));
    if (!address) continue;  // "unreachable"-style entries name no prefix
    int length = 32;
    if (slash != std::string::npos) {
      std::from_chars(destination.data() + slash + 1, destination.data() + destination.size(),
                      length);
    }
    if (length < 0 || length > 32) continue;
    prefixes.push_back(prefix_of(*address, length));
  }
  return prefixes;
}

std::optional<std::string> device_in_route_json(std::string_view json) {
  auto routes = parse_json_array(json, "`ip -j route` output");
  if (!routes) return std::nullopt;
  for (const bj::value& route : *routes) {
    if (!route.is_object()) continue;
    std::string device = json_string(route.as_object(), "dev");
    if (!device.empty()) return device;
  }
  return std::nullopt;
}

std::uint32_t gateway_address(const Ipv4Prefix& subnet) {
  return subnet.address + 1;
}

std::optional<std::uint32_t> next_free_address(const Ipv4Prefix& subnet,
                                               const std::set<std::uint32_t>& allocated) {
  if (subnet.length > 30) return std::nullopt;
  for (std::uint32_t address = gateway_address(subnet) + 1; address < subnet.last(); ++address) {
    if (!allocated.contains(address)) return address;
  }
  return std::nullopt;
}

std::string mac_for_address(std::uint32_t address) {
  char text[18];
  std::snprintf(text, sizeof text, "02:42:%02x:%02x:%02x:%02x", address >> 24, address >> 16 & 0xff,
                address >> 8 & 0xff, address & 0xff);
  return text;
}

std::string host_veth_name(std::string_view network, std::string_view endpoint_id,
                           std::string_view prefix) {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
  auto mix = [&](std::string_view text) {
    for (char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  };
  mix(network);
  mix(std::string_view("\0", 1));
  mix(endpoint_id);
  constexpr std::size_t kMaxLength = 15;  // IFNAMSIZ less the NUL
  int digits = static_cast<int>(kMaxLength - std::min(prefix.size(), kMaxLength - 1));
  char text[32];  // room for any 64-bit value, so the compiler sees nothing truncated
  std::snprintf(text, sizeof text, "%0*llx", digits,
                static_cast<unsigned long long>(hash & ((std::uint64_t{1} << (4 * digits)) - 1)));
  return std::string(prefix.substr(0, kMaxLength - digits)) + text;
}

std::optional<std::uint16_t> pick_port(std::uint16_t low, std::uint16_t high, std::uint16_t start,
                                       const std::set<std::uint16_t>& taken,
                                       const std::function<bool(std::uint16_t)>& usable) {
  if (low == 0 || low > high) return std::nullopt;
  std::uint32_t span = std::uint32_t{high} - low + 1;
  std::uint32_t offset = start >= low && start <= high ? std::uint32_t{start} - low : 0;
  for (std::uint32_t tried = 0; tried < span; ++tried) {
    auto port = static_cast<std::uint16_t>(low + (offset + tried) % span);
    if (!taken.contains(port) && usable(port)) return port;
  }
  return std::nullopt;
}

std::string nft_endpoint_ports_script(const BridgeOptions& options, const Endpoint& endpoint,
                                      std::string_view verb) {
  std::string script;
  for (std::string_view protocol : {"tcp", "udp"}) {
    if (std::string elements = nft_elements({endpoint}, protocol); !elements.empty()) {
      script += std::string(verb) + " element ip " + options.nft_table + " " +
                std::string(protocol) + "_ports { " + elements + " }\n";
    }
  }
  return script;
}

std::string nft_table_script(const BridgeOptions& options, const Ipv4Prefix& subnet,
                             const std::vector<Endpoint>& endpoints) {
  const std::string& table = options.nft_table;
  std::string bridge = "\"" + options.name + "\"";
  std::string net = subnet.to_string();
  std::string script = "add table ip " + table + "\ndelete table ip " + table + "\n";
  script += "table ip " + table + " {\n";
  for (std::string_view protocol : {"tcp", "udp"}) {
    script += "  map " + std::string(protocol) +
              "_ports {\n    type inet_service : ipv4_addr . inet_service\n";
    if (std::string elements = nft_elements(endpoints, protocol); !elements.empty()) {
      script += "    elements = { " + elements + " }\n";
    }
    script += "  }\n";
  }
  // Published ports, from every local address: arriving packets, and the host's own
  // (127.0.0.1 included: route_localnet on the bridge lets them leave through it).
  script +=
      "  chain prerouting {\n"
      "    type nat hook prerouting priority dstnat; policy accept;\n"
      "    fib daddr type local dnat ip to tcp dport map @tcp_ports\n"
      "    fib daddr type local dnat ip to udp dport map @udp_ports\n"
      "  }\n"
      "  chain output {\n"
      "    type nat hook output priority -100; policy accept;\n"
      "    fib daddr type local dnat ip to tcp dport map @tcp_ports\n"
      "    fib daddr type local dnat ip to udp dport map @udp_ports\n"
      "  }\n";
  // Masquerade: containers going elsewhere; 127.0.0.1 sources, which the containers could not
  // answer; and hairpin connections (a container to a published port of one on the bridge),
  // whose replies would otherwise go straight back over the bridge, bypassing the DNAT.
  script +=
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    oifname != " +
      bridge + " ip saddr " + net +
      " masquerade\n"
      "    oifname " +
      bridge +
      " ip saddr 127.0.0.0/8 masquerade\n"
      "    oifname " +
      bridge + " ct status dnat ip saddr " + net +
      " masquerade\n"
      "  }\n";
  // Containers may go anywhere; from outside only replies and published ports reach them.
  script +=
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      "    iifname " +
      bridge +
      " accept\n"
      "    oifname " +
      bridge +
      " ct state established,related accept\n"
      "    oifname " +
      bridge +
      " ct status dnat accept\n"
      "    oifname " +
      bridge +
      " drop\n"
      "  }\n";
  script += "}\n";
  return script;
}

std::string network_state_json(const NetworkState& state) {
  bj::array endpoints;
  for (const Endpoint& endpoint : state.endpoints) {
    bj::array bindings;
    for (const PortBinding& binding : endpoint.bindings) {
      bindings.push_back(bj::object{{"bind_ip", binding.bind_ip},
                                    {"container_port", binding.container_port},
                                    {"host_port", binding.host_port},
                                    {"protocol", binding.protocol}});
    }
    endpoints.push_back(bj::object{{"id", endpoint.id},
                                   {"netns_path", endpoint.netns_path},
                                   {"ip", endpoint.ip},
                                   {"gateway", endpoint.gateway},
                                   {"mac", endpoint.mac},
                                   {"host_veth", endpoint.host_veth},
                                   {"bindings", std::move(bindings)}});
  }
  bj::object root{
      {"version", kStateVersion}, {"subnet", state.subnet}, {"endpoints", std::move(endpoints)}};
  return bj::serialize(root) + "\n";
}

Result<NetworkState> parse_network_state(std::string_view json) {
  boost::system::error_code error;
  bj::value value = bj::parse(json, error);
  if (error || !value.is_object()) return fail(ErrorCode::kInternal, "not a JSON object");
  const bj::object& root = value.as_object();
  const bj::value* version = root.if_contains("version");
  if (version == nullptr || !version->is_int64() || version->as_int64() != kStateVersion) {
    return fail(ErrorCode::kInternal, "not version " + std::to_string(kStateVersion));
  }
  NetworkState state;
  state.subnet = json_string(root, "subnet");
  const bj::value* endpoints = root.if_contains("endpoints");
  if (endpoints == nullptr || !endpoints->is_array()) return state;
  for (const bj::value& item : endpoints->as_array()) {
    if (!item.is_object()) return fail(ErrorCode::kInternal, "an endpoint is not an object");
    const bj::object& object = item.as_object();
    Endpoint endpoint{json_string(object, "id"),
                      json_string(object, "netns_path"),
                      json_string(object, "ip"),
                      json_string(object, "gateway"),
                      json_string(object, "mac"),
                      json_string(object, "host_veth"),
                      {}};
    if (endpoint.id.empty() || !parse_ipv4(endpoint.ip) || endpoint.host_veth.empty()) {
      return fail(ErrorCode::kInternal, "an endpoint without id, ip or host_veth");
    }
    if (const bj::value* bindings = object.if_contains("bindings");
        bindings && bindings->is_array()) {
      for (const bj::value& binding : bindings->as_array()) {
        if (!binding.is_object()) continue;
        const bj::object& fields = binding.as_object();
        PortBinding parsed{json_string(fields, "bind_ip"), json_port(fields, "container_port"),
                           json_port(fields, "host_port"), json_string(fields, "protocol")};
        if (parsed.container_port == 0 || parsed.host_port == 0 ||
            (parsed.protocol != "tcp" && parsed.protocol != "udp")) {
          return fail(ErrorCode::kInternal, "endpoint " + endpoint.id + " has a bad port binding");
        }
        endpoint.bindings.push_back(std::move(parsed));
      }
    }
    state.endpoints.push_back(std::move(endpoint));
  }
  return state;
}

// ---- Host helpers ----------------------------------------------------------------------------

std::string errno_message() {
  return std::generic_category().message(errno);
}

bool link_exists(std::string_view name) {
  return path_exists(kSysNet / std::string(name));
}

Result<UniqueFd> lock_file(const fs::path& path) {
  std::error_code error;
  fs::create_directories(path.parent_path(), error);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail(ErrorCode::kInternal, "opening " + path.string() + ": " + errno_message());
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail(ErrorCode::kInternal, "locking " + path.string() + ": " + errno_message());
    }
  }
  return fd;
}

Status write_proc_setting(const fs::path& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return fail(ErrorCode::kInternal, "opening " + path.string() + ": " + errno_message());
  char current[16] = {};
  if (::read(fd.get(), current, sizeof current - 1) > 0 &&
      std::string_view(current).substr(0, value.size()) == value) {
    return {};  // writing ip_forward resets per-interface settings: only when it changes
  }
  if (::pwrite(fd.get(), value.data(), value.size(), 0) < 0) {
    return fail(ErrorCode::kInternal, "writing " + path.string() + ": " + errno_message());
  }
  return {};
}

Result<int> default_mtu() {
  auto json = run_checked({"ip", "-j", "-4", "route", "show", "default"});
  if (!json) return std::unexpected(json.error());
  auto device = device_in_route_json(*json);
  if (!device || !all_name_chars(*device)) return kDefaultMtu;
  auto text = read_text_file(kSysNet / *device / "mtu");
  if (!text) return kDefaultMtu;
  int mtu = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), mtu);
  if (error != std::errc() || mtu < 68) return kDefaultMtu;
  return mtu;
}

bool is_nft_table_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::isalpha(static_cast<unsigned char>(name[0])) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

// ---- pick_free_subnet ------------------------------------------------------------------------

Result<std::string> pick_free_subnet() {
  auto in_use = host_prefixes();
  if (!in_use) return std::unexpected(std::move(in_use.error()).context("picking a subnet"));
  auto subnet = choose_free_subnet(*in_use);
  if (!subnet) {
    return fail(ErrorCode::kLimitExceeded,
                "picking a subnet: every /24 of 172.30.0.0/15 is in use on this host");
  }
  return subnet->to_string();
}

// ---- BridgeNetwork ---------------------------------------------------------------------------

BridgeNetwork::BridgeNetwork(BridgeOptions options)
    : options_(std::move(options)), state_file_(options_.state_file) {}

BridgeNetwork::~BridgeNetwork() = default;

Result<std::unique_ptr<BridgeNetwork>> BridgeNetwork::open(BridgeOptions options) {
  std::string doing = "opening bridge network " + options.name;
  if (auto valid = validate_options(options); !valid) {
    return std::unexpected(std::move(valid.error()).context(doing));
  }
  std::unique_ptr<BridgeNetwork> network(new BridgeNetwork(std::move(options)));
  std::lock_guard lock(network->mutex_);
  if (auto set_up = network->setup_locked(); !set_up) {
    return std::unexpected(std::move(set_up.error()).context(doing));
  }
  return network;
}

namespace {

Result<NetworkState> load_state(const StateFile& file) {
  auto text = file.read();
  if (!text) return std::unexpected(text.error());
  if (!*text) return NetworkState{};
  auto state = parse_network_state(**text);
  if (!state) {
    return std::unexpected(std::move(state.error()).context("reading " + file.path().string()));
  }
  return state;
}

struct BridgeFacts {
  bool exists = false;
  std::optional<InterfaceAddress> address;  // its first IPv4 address
};

Result<BridgeFacts> inspect_bridge(const std::string& bridge) {
  BridgeFacts facts{link_exists(bridge), std::nullopt};
  if (!facts.exists) return facts;
  if (!path_exists(kSysNet / bridge / "bridge")) {
    return invalid("interface " + bridge + " exists and is not a bridge");
  }
  auto json = run_checked({"ip", "-j", "-4", "addr", "show", "dev", bridge});
  if (!json) return std::unexpected(json.error());
  auto addresses = addresses_in_addr_json(*json);
  if (!addresses) return std::unexpected(addresses.error());
  if (!addresses->empty()) facts.address = addresses->front();
  return facts;
}

// The subnet: as told, else as before (the state's, the bridge's), else a free one. A new
// bridge's must not overlap anything on the host.
Result<Ipv4Prefix> resolve_subnet(const BridgeOptions& options, const NetworkState& state,
                                  const BridgeFacts& bridge) {
  std::string source = options.subnet.empty() ? state.subnet : options.subnet;
  if (source.empty() && bridge.address) {
    source = prefix_of(bridge.address->address, bridge.address->length).to_string();
  }
  Ipv4Prefix subnet;
  if (!source.empty()) {
    auto parsed = parse_ipv4_prefix(source);
    if (!parsed) return std::unexpected(std::move(parsed.error()).context("subnet"));
    if (parsed->length < 8 || parsed->length > 30) {
      return invalid("subnet " + source + " is not a /8 to /30");
    }
    subnet = *parsed;
  }
  if (!bridge.exists) {
    auto in_use = host_prefixes();
    if (!in_use) return std::unexpected(in_use.error());
    if (source.empty()) {
      auto free = choose_free_subnet(*in_use);
      if (!free) {
        return fail(ErrorCode::kLimitExceeded, "every /24 of 172.30.0.0/15 is in use on this host");
      }
      subnet = *free;
    }
    for (const Ipv4Prefix& used : *in_use) {
      if (used.overlaps(subnet)) {
        return invalid("subnet " + subnet.to_string() + " overlaps " + used.to_string() +
                       ", in use on this host");
      }
    }
  }
  if (!state.subnet.empty() && state.subnet != subnet.to_string() && !state.endpoints.empty()) {
    return invalid("the state file has endpoints in " + state.subnet + ", not in " +
                   subnet.to_string());
  }
  std::uint32_t gateway = gateway_address(subnet);
  if (bridge.address &&
      (bridge.address->address != gateway || bridge.address->length != subnet.length)) {
    return invalid("bridge " + options.name + " has address " +
                   format_ipv4(bridge.address->address) + "/" +
                   std::to_string(bridge.address->length) + ", not " + format_ipv4(gateway) + "/" +
                   std::to_string(subnet.length));
  }
  return subnet;
}

// Creates the bridge, or completes one an earlier agent left, and lets it forward.
Status ensure_bridge(const std::string& bridge, const Ipv4Prefix& subnet, int mtu,
                     const BridgeFacts& facts) {
  std::uint32_t gateway = gateway_address(subnet);
  std::vector<std::string> lines;
  if (!facts.exists) {
    // A fixed MAC: a bridge otherwise takes its lowest port's, which changes as ports come and go.
    lines.push_back("link add " + bridge + " address " + mac_for_address(gateway) + " mtu " +
                    std::to_string(mtu) + " type bridge");
  }
  if (!facts.address) {
    lines.push_back("addr add " + format_ipv4(gateway) + "/" + std::to_string(subnet.length) +
                    " brd + dev " + bridge);
  }
  lines.push_back("link set " + bridge + " up");
  if (auto done = run_checked({"ip", "-batch", "-"}, ip_batch_text(lines)); !done) {
    return std::unexpected(std::move(done.error()).context("setting up bridge " + bridge));
  }
  // No spanning tree: with it, a new port listens and learns for 30 s before it forwards. A
  // bridge made by ip has it off; one found (made or changed by someone else) may not.
  fs::path stp = fs::path("/sys/class/net") / bridge / "bridge" / "stp_state";
  if (auto set = write_proc_setting(stp, "0"); !set) return set;
  if (auto set = write_proc_setting("/proc/sys/net/ipv4/ip_forward", "1"); !set) return set;
  // Lets DNAT'ed packets from 127.0.0.1 leave through the bridge (then masqueraded).
  return write_proc_setting(fs::path("/proc/sys/net/ipv4/conf") / bridge / "route_localnet", "1");
}

// The endpoint's netns and veth pair: the host end on the bridge, eth0 in the netns with the
// endpoint's address and a default route via the gateway. Over netlink, with no ip process.
Status create_links(const Endpoint& endpoint, const std::string& netns, const std::string& bridge,
                    int prefix_length, int mtu) {
  auto mac = parse_mac(endpoint.mac);
  if (!mac) return std::unexpected(mac.error());
  auto address = parse_ipv4(endpoint.ip);
  if (!address) return std::unexpected(address.error());
  auto gateway = parse_ipv4(endpoint.gateway);
  if (!gateway) return std::unexpected(gateway.error());
  if (auto shared = ensure_shared_netns_dir(); !shared) return shared;
  auto host = RouteNetlink::open();
  if (!host) return std::unexpected(host.error());
  auto bridge_index = host->link_index(bridge);
  if (!bridge_index) return std::unexpected(bridge_index.error());
  auto made = create_netns(kNetnsDir / netns);
  if (!made) return std::unexpected(made.error());
  // The host end's MAC: the container's, made distinct (locally administered, unicast).
  MacAddress host_mac = *mac;
  host_mac[0] = 0x0a;
  VethPair pair{endpoint.host_veth, host_mac, "eth0", *mac, mtu, 0, made->fd.get()};
  if (auto paired = host->add_veth_pair(pair); !paired) return paired;
  auto veth = host->link_index(endpoint.host_veth);
  if (!veth) return std::unexpected(veth.error());
  if (auto enslaved = host->set_link_master(*veth, *bridge_index); !enslaved) return enslaved;
  RouteNetlink& inside = made->netlink;
  constexpr int kLoopback = 1;
  if (auto up = inside.set_link_up(kLoopback); !up) return up;
  auto eth0 = inside.link_index("eth0");
  if (!eth0) return std::unexpected(eth0.error());
  if (auto added = inside.add_address(*eth0, *address, prefix_length, false); !added) return added;
  if (auto up = inside.set_link_up(*eth0); !up) return up;
  if (auto routed = inside.add_route(*eth0, 0, 0, *gateway); !routed) return routed;
  // Running, the host end is also a forwarding port of the bridge.
  if (auto running = inside.await_link_running(*eth0); !running) return running;
  return host->await_link_running(*veth);
}

}  // namespace

Status BridgeNetwork::setup_locked() {
  auto state = load_state(state_file_);
  if (!state) return std::unexpected(state.error());
  {
    // Picking a subnet and creating the bridge are one step for all agents on the host.
    auto host_lock = lock_file(kHostLockFile);
    if (!host_lock) return std::unexpected(host_lock.error());
    auto bridge = inspect_bridge(options_.name);
    if (!bridge) return std::unexpected(bridge.error());
    auto subnet = resolve_subnet(options_, *state, *bridge);
    if (!subnet) return std::unexpected(subnet.error());
    subnet_ = *subnet;
    options_.subnet = subnet->to_string();
    auto mtu = options_.mtu != 0 ? Result<int>(options_.mtu) : default_mtu();
    if (!mtu) return std::unexpected(mtu.error());
    mtu_ = *mtu;
    if (auto ready = ensure_bridge(options_.name, subnet_, mtu_, *bridge); !ready) return ready;
  }

  for (Endpoint& endpoint : state->endpoints) {
    endpoint.gateway = format_ipv4(gateway_address(subnet_));
    std::string id = endpoint.id;
    endpoints_.emplace(std::move(id), std::move(endpoint));
  }
  if (auto synced = sync_nft_locked(endpoint_list_locked()); !synced) return synced;
  reserve_restored_ports_locked();
  std::error_code error;
  fs::create_directories(options_.state_file.parent_path(), error);
  return save_locked();
}

void BridgeNetwork::reserve_restored_ports_locked() {
  // The previous agent's reservations died with it; taking the ports again keeps host
  // processes off them. One that a host process took meanwhile stays mapped to its container.
  for (const auto& [id, endpoint] : endpoints_) {
    for (const PortBinding& binding : endpoint.bindings) {
      auto reserved = reserve_port(binding.host_port, binding.protocol);
      if (!reserved) {
        spdlog::warn("bridge network {}: endpoint {}: {}", options_.name, id,
                     reserved.error().message);
        continue;
      }
      reservations_[id].push_back(std::move(*reserved));
    }
  }
}

std::vector<Endpoint> BridgeNetwork::endpoint_list_locked() const {
  std::vector<Endpoint> list;
  for (const auto& [id, endpoint] : endpoints_) list.push_back(endpoint);
  return list;
}

Status BridgeNetwork::sync_nft_locked(const std::vector<Endpoint>& endpoints) {
  auto done = run_nft_setup_script(nft_table_script(options_, subnet_, endpoints));
  if (!done) {
    return std::unexpected(
        std::move(done.error()).context("writing nftables table ip " + options_.nft_table));
  }
  return {};
}

Status BridgeNetwork::change_ports_locked(const Endpoint& endpoint, std::string_view verb) {
  std::string script = nft_endpoint_ports_script(options_, endpoint, verb);
  if (script.empty()) return {};
  auto done = run_nft_script(script);
  if (!done) {
    return std::unexpected(
        std::move(done.error())
            .context("changing the port maps of table ip " + options_.nft_table));
  }
  return {};
}

Status BridgeNetwork::save_locked() {
  NetworkState state{options_.subnet, endpoint_list_locked()};
  // Endpoints do not outlive the host, and a lost subnet choice is made again: surviving the
  // agent's death is enough, and a launch does not wait for the disk.
  auto saved = state_file_.write(network_state_json(state), Durability::kProcess);
  if (!saved) return std::unexpected(std::move(saved.error()).context("saving network state"));
  return {};
}

std::string BridgeNetwork::netns_name(std::string_view id) const {
  return options_.netns_prefix + std::string(id);
}

std::set<std::uint16_t> BridgeNetwork::allocated_ports(std::string_view protocol) const {
  std::set<std::uint16_t> ports;
  for (const auto& [id, endpoint] : endpoints_) {
    for (const PortBinding& binding : endpoint.bindings) {
      if (binding.protocol == protocol) ports.insert(binding.host_port);
    }
  }
  return ports;
}

Result<std::vector<PortBinding>> BridgeNetwork::allocate_ports(
    const std::vector<PortMapping>& ports, std::vector<UniqueFd>& reservations) {
  std::map<std::string, std::set<std::uint16_t>> taken = {{"tcp", allocated_ports("tcp")},
                                                          {"udp", allocated_ports("udp")}};
  std::vector<PortBinding> bindings;
  // Static ports first, so a dynamic pick never takes one that the same request names.
  for (const PortMapping& port : ports) {
    if (port.host_port == 0) continue;
    std::string name = std::to_string(port.host_port) + "/" + port.protocol;
    if (taken[port.protocol].contains(port.host_port)) {
      return fail(ErrorCode::kResourceInUse, "host port " + name + " is already mapped");
    }
    auto reserved = reserve_port(port.host_port, port.protocol);
    if (!reserved) return std::unexpected(reserved.error());
    reservations.push_back(std::move(*reserved));
    taken[port.protocol].insert(port.host_port);
    bindings.push_back({"0.0.0.0", port.container_port, port.host_port, port.protocol});
  }
  for (std::size_t index = 0; index < ports.size();) {
    const PortMapping& port = ports[index];
    std::size_t count = 1;
    while (index + count < ports.size() && ports[index + count].continues_range) ++count;
    if (port.host_port != 0) {
      index += count;
      continue;
    }
    // A block of `count` consecutive free ports starting at the candidate; a range that
    // cannot fit above the candidate is never tried there.
    std::set<std::uint16_t>& protocol_taken = taken[port.protocol];
    std::uint16_t& next = next_port_[port.protocol];
    auto last_start = static_cast<std::uint16_t>(
        options_.ephemeral_high - std::min<std::size_t>(count - 1, options_.ephemeral_high));
    auto picked = pick_port(options_.ephemeral_low, last_start, next, protocol_taken,
                            [&](std::uint16_t candidate) {
                              std::vector<UniqueFd> block;
                              for (std::size_t offset = 0; offset < count; ++offset) {
                                auto number = static_cast<std::uint16_t>(candidate + offset);
                                if (protocol_taken.contains(number)) return false;
                                auto reserved = reserve_port(number, port.protocol);
                                if (!reserved) return false;
                                block.push_back(std::move(*reserved));
                              }
                              for (UniqueFd& fd : block) reservations.push_back(std::move(fd));
                              return true;
                            });
    if (!picked) {
      return fail(ErrorCode::kResourceInUse,
                  "no " + std::string(count > 1 ? std::to_string(count) + " consecutive " : "") +
                      "free " + port.protocol + " host port" + (count > 1 ? "s" : "") + " in " +
                      std::to_string(options_.ephemeral_low) + "-" +
                      std::to_string(options_.ephemeral_high));
    }
    auto last = static_cast<std::uint16_t>(*picked + count - 1);
    // Round robin: a port just freed is not handed out again at once.
    next = last == options_.ephemeral_high ? options_.ephemeral_low : last + 1;
    for (std::size_t offset = 0; offset < count; ++offset) {
      auto number = static_cast<std::uint16_t>(*picked + offset);
      protocol_taken.insert(number);
      bindings.push_back({"0.0.0.0", ports[index + offset].container_port, number,
                          ports[index + offset].protocol});
    }
    index += count;
  }
  return bindings;
}

Result<Endpoint> BridgeNetwork::attach(const std::string& id,
                                       const std::vector<PortMapping>& ports) {
  std::lock_guard lock(mutex_);
  auto endpoint = attach_locked(id, ports);
  if (!endpoint) {
    return std::unexpected(
        std::move(endpoint.error()).context("attaching " + id + " to bridge " + options_.name));
  }
  return endpoint;
}

Result<Endpoint> BridgeNetwork::attach_locked(const std::string& id,
                                              const std::vector<PortMapping>& ports) {
  if (destroyed_) return fail(ErrorCode::kInternal, "the network was destroyed");
  if (auto found = endpoints_.find(id); found != endpoints_.end()) return found->second;
  std::string netns = netns_name(id);
  if (id.empty() || !is_safe_path_component(netns)) {
    return invalid("endpoint id '" + id + "' is not [A-Za-z0-9_.-]+");
  }
  if (auto valid = validate_mappings(ports); !valid) return std::unexpected(valid.error());

  std::set<std::uint32_t> addresses;
  for (const auto& [other_id, other] : endpoints_) {
    if (auto address = parse_ipv4(other.ip)) addresses.insert(*address);
  }
  auto address = next_free_address(subnet_, addresses);
  if (!address) return fail(ErrorCode::kLimitExceeded, "no free address in " + options_.subnet);
  std::vector<UniqueFd> reservations;
  auto bindings = allocate_ports(ports, reservations);
  if (!bindings) return std::unexpected(bindings.error());

  std::uint32_t gateway = gateway_address(subnet_);
  Endpoint endpoint{id,
                    (kNetnsDir / netns).string(),
                    format_ipv4(*address),
                    format_ipv4(gateway),
                    mac_for_address(*address),
                    host_veth_name(options_.name, id),
                    std::move(*bindings)};
  // Leftovers of an attach that a crash cut short.
  if (auto removed = remove_links(endpoint.host_veth, netns); !removed) {
    return std::unexpected(removed.error());
  }
  auto undo = [&](Error error) -> Result<Endpoint> {
    if (auto removed = remove_links(endpoint.host_veth, netns); !removed) {
      error.message += " (and undoing: " + removed.error().message + ")";
    }
    return std::unexpected(std::move(error));
  };
  if (auto created = create_links(endpoint, netns, options_.name, subnet_.length, mtu_); !created) {
    return undo(std::move(created.error()));
  }
  if (auto published = change_ports_locked(endpoint, "add"); !published) {
    // The maps are not what the state says (flushed from outside, a stale element): rebuild
    // them whole, this endpoint included.
    spdlog::warn("bridge network {}: {}; rebuilding its nft table", options_.name,
                 published.error().message);
    std::vector<Endpoint> with = endpoint_list_locked();
    with.push_back(endpoint);
    if (auto synced = sync_nft_locked(with); !synced) return undo(std::move(synced.error()));
  }
  endpoints_[id] = endpoint;
  if (auto saved = save_locked(); !saved) {
    endpoints_.erase(id);
    (void)change_ports_locked(endpoint, "delete");
    return undo(std::move(saved.error()));
  }
  reservations_[id] = std::move(reservations);
  return endpoint;
}

Status BridgeNetwork::detach(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (auto detached = detach_locked(id); !detached) {
    return std::unexpected(
        std::move(detached.error()).context("detaching " + id + " from bridge " + options_.name));
  }
  return {};
}

Status BridgeNetwork::detach_locked(const std::string& id) {
  auto found = endpoints_.find(id);
  if (found == endpoints_.end()) return {};
  Endpoint endpoint = found->second;
  if (auto unpublished = change_ports_locked(endpoint, "delete"); !unpublished) {
    // The maps did not hold what the state says: rebuild them without this endpoint.
    spdlog::warn("bridge network {}: {}; rebuilding its nft table", options_.name,
                 unpublished.error().message);
    std::vector<Endpoint> without;
    for (const auto& [other_id, other] : endpoints_) {
      if (other_id != id) without.push_back(other);
    }
    if (auto synced = sync_nft_locked(without); !synced) return synced;
  }
  // Deleting the host end takes the namespace end with it, even while a process keeps the
  // namespace alive.
  if (auto removed = remove_links(endpoint.host_veth, netns_name(id)); !removed) return removed;
  endpoints_.erase(found);
  reservations_.erase(id);
  return save_locked();
}

Status BridgeNetwork::reconcile(const std::set<std::string>& live) {
  std::lock_guard lock(mutex_);
  if (auto done = reconcile_locked(live); !done) {
    return std::unexpected(
        std::move(done.error()).context("reconciling bridge network " + options_.name));
  }
  return {};
}

Status BridgeNetwork::reconcile_locked(const std::set<std::string>& live) {
  std::vector<std::string> errors;
  std::vector<std::string> dead;
  for (const auto& [id, endpoint] : endpoints_) {
    if (!live.contains(id)) dead.push_back(id);
  }
  for (const std::string& id : dead) {
    if (auto detached = detach_locked(id); !detached) errors.push_back(detached.error().message);
  }

  // Veths of endpoints the state knows, and those already marked for removal.
  std::set<std::string> handled_veths;
  for (const auto& [id, endpoint] : endpoints_) handled_veths.insert(endpoint.host_veth);
  std::vector<std::string> lines;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(kNetnsDir, error)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(options_.netns_prefix)) continue;
    std::string id = name.substr(options_.netns_prefix.size());
    if (endpoints_.contains(id)) continue;
    std::string veth = host_veth_name(options_.name, id);
    if (link_exists(veth) && handled_veths.insert(veth).second) lines.push_back("link del " + veth);
    lines.push_back("netns del " + name);
  }
  // Only ports named as this module names veths: anything else on the bridge someone put there.
  for (const auto& port : fs::directory_iterator(kSysNet / options_.name / "brif", error)) {
    std::string name = port.path().filename().string();
    if (is_host_veth_name(name) && !handled_veths.contains(name))
      lines.push_back("link del " + name);
  }
  if (!lines.empty()) {
    auto output = run_command({"ip", "-force", "-batch", "-"}, ip_batch_text(lines));
    if (!output) {
      errors.push_back(output.error().message);
    } else if (output->status.exit_code != 0) {
      errors.push_back("removing unknown namespaces and veths: `ip -force -batch -` failed: " +
                       std::string(trim(output->err)));
    }
  }
  if (errors.empty()) return {};
  std::string message;
  for (const std::string& each : errors) message += (message.empty() ? "" : "; ") + each;
  return fail(ErrorCode::kInternal, message);
}

Status BridgeNetwork::destroy() {
  std::lock_guard lock(mutex_);
  std::string doing = "destroying bridge network " + options_.name;
  if (auto done = reconcile_locked({}); !done) {
    return std::unexpected(std::move(done.error()).context(doing));
  }
  // Adding first makes the delete succeed when the table is already gone.
  std::string script =
      "add table ip " + options_.nft_table + "\ndelete table ip " + options_.nft_table + "\n";
  if (auto done = run_nft_setup_script(script); !done) {
    return std::unexpected(std::move(done.error()).context(doing));
  }
  if (link_exists(options_.name)) {
    if (auto done = run_checked({"ip", "link", "del", options_.name}); !done) {
      return std::unexpected(std::move(done.error()).context(doing));
    }
  }
  if (auto removed = state_file_.remove(); !removed) {
    return std::unexpected(std::move(removed.error()).context(doing));
  }
  destroyed_ = true;
  return {};
}

std::vector<Endpoint> BridgeNetwork::endpoints() const {
  std::lock_guard lock(mutex_);
  return endpoint_list_locked();
}

}  // namespace wharf::agent

// The agent's bridge network (ECS networkMode bridge): a Linux bridge on a private IPv4 subnet,
// a named network namespace and veth pair per endpoint, and host ports DNAT'ed with nftables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/files.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

struct BridgeOptions {
  std::string name;          // the bridge interface, e.g. "wharf-1a2b3c": ≤ 15 characters
  std::string subnet;        // IPv4 CIDR, e.g. "172.30.7.0/24"; empty: the state's, the bridge's,
                             // or a free one (pick_free_subnet)
  std::string nft_table;     // e.g. "wharf_1a2b3c", in family ip
  std::string netns_prefix;  // endpoint namespaces are "<prefix><endpoint id>" under /run/netns;
                             // end it in a separator ("wharf-1a2b3c-"): reconcile() removes
                             // every namespace that starts with it
  std::filesystem::path state_file;  // IP and port allocations (JSON)
  std::uint16_t ephemeral_low = 49153;
  std::uint16_t ephemeral_high = 65535;
  int mtu = 0;  // of the bridge and veths; 0: that of the default route's interface, else 1500
};

struct PortMapping {
  std::uint16_t container_port = 0;
  std::uint16_t host_port = 0;   // 0: a free one from the ephemeral range
  std::string protocol = "tcp";  // tcp or udp
  // Part of a containerPortRange: its host port is the previous mapping's plus one, so a
  // range's dynamic host ports come out as one block.
  bool continues_range = false;
};

struct PortBinding {
  std::string bind_ip = "0.0.0.0";
  std::uint16_t container_port = 0;
  std::uint16_t host_port = 0;
  std::string protocol;

  bool operator==(const PortBinding&) const = default;
};

struct Endpoint {
  std::string id;
  std::string netns_path;  // /run/netns/<prefix><id>: join it with setns() or an OCI netns path
  std::string ip;          // of eth0 in the namespace
  std::string gateway;     // the bridge's address, the namespace's default route
  std::string mac;
  std::string host_veth;  // the host end of the veth pair, a port of the bridge
  std::vector<PortBinding> bindings;

  bool operator==(const Endpoint&) const = default;
};

// An IPv4 prefix; addresses are in host byte order.
struct Ipv4Prefix {
  std::uint32_t address = 0;  // host bits zero
  int length = 32;

  std::uint32_t mask() const { return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length); }
  std::uint32_t last() const { return address | ~mask(); }
  bool contains(std::uint32_t ip) const { return (ip & mask()) == address; }
  bool overlaps(const Ipv4Prefix& other) const {
    return contains(other.address) || other.contains(address);
  }
  std::string to_string() const;

  bool operator==(const Ipv4Prefix&) const = default;
};

// A free /24 for an agent that is not told one: the first of 172.30.0.0/24 … 172.31.255.0/24
// that no address or route on this host overlaps (other agents' bridges included).
Result<std::string> pick_free_subnet();

class BridgeNetwork {
 public:
  // Creates (or adopts, after an agent restart) the bridge with the gateway address, enables
  // IPv4 forwarding and route_localnet on the bridge, (re)writes the nftables table from the
  // state file (so its port maps match the allocations), and re-reserves the allocated ports.
  static Result<std::unique_ptr<BridgeNetwork>> open(BridgeOptions options);

  // Leaves the bridge, namespaces and rules in place (a restarted agent adopts them) and
  // releases the port reservations.
  ~BridgeNetwork();

  BridgeNetwork(const BridgeNetwork&) = delete;
  BridgeNetwork& operator=(const BridgeNetwork&) = delete;

  // Endpoint `id` (a container or a task; [A-Za-z0-9_.-]+): a named netns with lo up and eth0 (the
  // peer of a veth on the bridge) holding the next free IP, a default route via the gateway, and
  // `ports` DNAT'ed from every host address including 127.0.0.1. Dynamic host ports come from the
  // ephemeral range; a static one already allocated, or bound on the host, is kResourceInUse.
  // Returns the existing endpoint for an id already attached. On an error, whatever was set up
  // is undone.
  Result<Endpoint> attach(const std::string& id, const std::vector<PortMapping>& ports);

  // Removes the endpoint's port mappings, veth and netns, and frees its IP and ports. Detaching
  // an unknown id succeeds.
  Status detach(const std::string& id);

  // After an agent crash: detaches every endpoint not in `live`, and removes namespaces with
  // this network's prefix and ports of the bridge that the state does not know.
  Status reconcile(const std::set<std::string>& live);

  // Detaches everything, then removes the nftables table, the bridge and the state file.
  Status destroy();

  std::vector<Endpoint> endpoints() const;
  const std::string& subnet() const { return options_.subnet; }

 private:
  explicit BridgeNetwork(BridgeOptions options);
  Status setup_locked();
  void reserve_restored_ports_locked();
  Result<Endpoint> attach_locked(const std::string& id, const std::vector<PortMapping>& ports);
  Result<std::vector<PortBinding>> allocate_ports(const std::vector<PortMapping>& ports,
                                                  std::vector<UniqueFd>& reservations);
  Status detach_locked(const std::string& id);
  Status reconcile_locked(const std::set<std::string>& live);
  Status sync_nft_locked(const std::vector<Endpoint>& endpoints);
  Status change_ports_locked(const Endpoint& endpoint, std::string_view verb);
  Status save_locked();
  std::vector<Endpoint> endpoint_list_locked() const;
  std::set<std::uint16_t> allocated_ports(std::string_view protocol) const;
  std::string netns_name(std::string_view id) const;

  BridgeOptions options_;  // subnet filled in by open()
  StateFile state_file_;   // options_.state_file; written with mutex_ held
  Ipv4Prefix subnet_;
  int mtu_ = 0;
  mutable std::mutex mutex_;  // held across the commands too: attaches and detaches are serial
  bool destroyed_ = false;
  std::map<std::string, Endpoint> endpoints_;
  // Sockets bound to each endpoint's host ports, so no host process takes them meanwhile.
  std::map<std::string, std::vector<UniqueFd>> reservations_;
  std::map<std::string, std::uint16_t> next_port_;  // by protocol: where dynamic picks go on
};

// The pure parts, exposed for tests.

Result<std::uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(std::uint32_t address);
// "a.b.c.d/n", or "a.b.c.d" for a /32; host bits must be zero.
Result<Ipv4Prefix> parse_ipv4_prefix(std::string_view text);
// The prefix of length `length` holding `address`.
Ipv4Prefix prefix_of(std::uint32_t address, int length);

// The first /24 of 172.30.0.0/16 and then 172.31.0.0/16 that overlaps none of `in_use`.
std::optional<Ipv4Prefix> choose_free_subnet(const std::vector<Ipv4Prefix>& in_use);
// The prefixes of the addresses in `ip -j -4 addr show` output.
Result<std::vector<Ipv4Prefix>> prefixes_in_addr_json(std::string_view json);
// The destinations in `ip -j -4 route show table all` output, the default route left out.
Result<std::vector<Ipv4Prefix>> prefixes_in_route_json(std::string_view json);
// The interface of the first route in `ip -j -4 route show default` output, if any.
std::optional<std::string> device_in_route_json(std::string_view json);

// The gateway: the subnet's first host address, on the bridge.
std::uint32_t gateway_address(const Ipv4Prefix& subnet);
// The lowest address of `subnet` for a new endpoint: not the network address, the gateway,
// the broadcast address, or one in `allocated`.
std::optional<std::uint32_t> next_free_address(const Ipv4Prefix& subnet,
                                               const std::set<std::uint32_t>& allocated);
// 02:42:a:b:c:d for a.b.c.d (Docker's old scheme): an address handed out again comes with the
// same MAC, so no neighbour cache entry for it goes stale.
std::string mac_for_address(std::uint32_t address);
// `prefix` and hex digits of a hash of `network` (the bridge, or another network's own name) and
// the endpoint id, 15 characters in all ("veth" and 11 digits by default). The same arguments
// give the same name: the bridge finds the leftover of a crashed attach by it.
std::string host_veth_name(std::string_view network, std::string_view endpoint_id,
                           std::string_view prefix = "veth");

// The first port from `start` on, wrapping around within [low, high], that is not in `taken`
// and that `usable` accepts (it may reserve the port as a side effect); nullopt if none is.
std::optional<std::uint16_t> pick_port(std::uint16_t low, std::uint16_t high, std::uint16_t start,
                                       const std::set<std::uint16_t>& taken,
                                       const std::function<bool(std::uint16_t)>& usable);

// ---- Host helpers the agent's networks share ----

// Where named network namespaces are bound, as iproute2 binds them.
inline const std::filesystem::path kNetnsDir = "/run/netns";
// The kernel's view of this host's network interfaces.
inline const std::filesystem::path kSysNet = "/sys/class/net";
// errno, as words.
std::string errno_message();
// Whether this host has the network interface `name`.
bool link_exists(std::string_view name);

// Holds an exclusive flock on `path` (created, with its directory, if needed) until the
// descriptor is closed.
Result<UniqueFd> lock_file(const std::filesystem::path& path);
// Writes `value` to a /proc/sys setting, unless it already holds it.
Status write_proc_setting(const std::filesystem::path& path, std::string_view value);
// The MTU of the default route's interface; 1500 when there is none.
Result<int> default_mtu();
// A name nft takes as a table's: a letter and up to 63 of [A-Za-z0-9_].
bool is_nft_table_name(std::string_view name);

// The nft script that (re)creates `table` (family ip) for the bridge: NAT chains, the forward
// chain and the port maps, holding the bindings of `endpoints`. Replaces the table atomically.
std::string nft_table_script(const BridgeOptions& options, const Ipv4Prefix& subnet,
                             const std::vector<Endpoint>& endpoints);
// The nft script that adds (`verb` "add") or removes ("delete") one endpoint's published ports
// in the table's port maps; empty when it publishes none. Attaching only adds elements: a
// transaction that deletes anything waits out a kernel RCU grace period (~15 ms here).
std::string nft_endpoint_ports_script(const BridgeOptions& options, const Endpoint& endpoint,
                                      std::string_view verb);

// The state file's contents, and back.
struct NetworkState {
  std::string subnet;
  std::vector<Endpoint> endpoints;
};
std::string network_state_json(const NetworkState& state);
Result<NetworkState> parse_network_state(std::string_view json);

}  // namespace wharf::agent

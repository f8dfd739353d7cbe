// The agent's data plane for ECS networkMode awsvpc (and an isolated namespace for networkMode
// none): a named network namespace per task holding the task's own IP, routed from the host
// by a /32 route (no bridge, no subnet on the host), with the task's security groups' ingress
// rules enforced by nftables.
//
// Per endpoint: /run/netns/<netns_prefix><id> with lo up (and 169.254.170.2/32, where the agent
// serves the task metadata endpoint) and eth0 = IP/32 and the given MAC, a link route to the
// gateway 169.254.1.1 (and a permanent neighbour entry for it: the host end's MAC,
// ee:ee:ee:ee:ee:ee) and a default route via it. The host end of the veth (<veth_prefix> and
// hash digits, a new name on every attach; up, proxy_arp, in the interface group
// kAwsvpcLinkGroup, its alias the namespace's name) carries the route IP/32. Several networks (of
// several agents) may share one host and one subnet: each owns only its /32s, and an IP routed
// already on the host is refused.
//
// nftables, one table (family inet) per network: a map from output interface to that task's
// chain, consulted on forwarded and host-originated traffic (established/related accepted,
// then the ingress rules, then drop); and masquerading of the tasks' traffic that leaves
// through an interface that is not a task's (of any network). Egress is not filtered.
//
// Costs, so attach/detach stay in milliseconds: namespaces are made in-process (unshare on a
// short-lived thread, bind-mounted as `ip netns add` does), links, addresses and routes through
// rtnetlink (rtnetlink.hpp, no `ip` process), and one `nft -f -` per attach or update;
// concurrent callers' scripts run together as one transaction. Detaching deletes the route (the
// IP stops reaching the task and is free again at once) and the namespace (the kernel destroys
// the veth with it, asynchronously); the task's chain and elements, which then match nothing,
// are deleted by a background thread, batched: a deletion makes nft wait out an RCU grace period
// (~10-15 ms) on exit, which no caller should.
#pragma once

#include <boost/json/array.hpp>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/files.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

// The interface group of every awsvpc host veth, of every network on the host: traffic that
// leaves through one is not masqueraded.
inline constexpr std::uint32_t kAwsvpcLinkGroup = 0x77766163;  // "wvac"
// ECS's address for the task metadata endpoint: every endpoint's lo has it, and the agent listens
// on it inside awsvpc tasks' and none-mode containers' namespaces.
inline constexpr std::string_view kMetadataAddress = "169.254.170.2";

struct IngressRule {
  IngressRule() = default;
  IngressRule(std::string protocol, std::uint16_t from_port, std::uint16_t to_port,
              std::vector<std::string> sources, std::vector<std::string> source_groups = {},
              int icmp_type = -1, int icmp_code = -1)
      : protocol(std::move(protocol)),
        from_port(from_port),
        to_port(to_port),
        sources(std::move(sources)),
        source_groups(std::move(source_groups)),
        icmp_type(icmp_type),
        icmp_code(icmp_code) {}

  std::string protocol;         // "tcp", "udp", "icmp" or "all"
  std::uint16_t from_port = 0;  // inclusive; tcp/udp only
  std::uint16_t to_port = 65535;
  // IPv4 CIDRs ("10.0.0.0/8", "172.31.0.7/32", or a bare address)
  std::vector<std::string> sources;
  // Security group ids ("sg-…") whose members' addresses are admitted too: each is a named nft
  // set that set_group_members() fills, so a membership change touches no task's rules. A rule
  // with neither sources nor groups admits nothing.
  std::vector<std::string> source_groups;
  // icmp only: the type and code admitted, -1 for any.
  int icmp_type = -1;
  int icmp_code = -1;

  bool operator==(const IngressRule&) const = default;
};

struct AwsvpcOptions {
  std::string nft_table;     // e.g. "wharfvpc_1a2b3c4d5e", family inet
  std::string netns_prefix;  // e.g. "wharfvpc-1a2b3c4d5e-"; reconcile() removes every namespace
                             // starting with it that it does not know
  std::string veth_prefix;   // 2–4 of [a-z0-9], a letter first; host veth = prefix + hash digits
  std::filesystem::path state_file;  // JSON: the endpoints, so a restarted agent adopts or cleans
  int mtu = 0;                       // 0: the default route's interface's, else 1500
};

struct AwsvpcSpec {
  std::string id;   // the task id (32 hex) or, for an isolated endpoint, any [A-Za-z0-9_.-]+
  std::string ip;   // "172.31.0.7"; empty: an isolated namespace (networkMode none): lo only
                    // (with 169.254.170.2), no veth, no rules
  std::string mac;  // optional; empty: derived from the IP (mac_for_address)
  std::vector<IngressRule> ingress;
};

struct AwsvpcEndpoint {
  std::string id;
  std::string netns_path;  // /run/netns/<netns_prefix><id>: an OCI netns path, or setns()
  std::string ip;          // empty for an isolated endpoint
  std::string mac;
  std::string host_veth;                // empty for an isolated endpoint
  std::string gateway = "169.254.1.1";  // empty for an isolated endpoint
  std::vector<IngressRule> ingress;     // as attached or last updated; none when isolated

  bool operator==(const AwsvpcEndpoint&) const = default;
};

class AwsvpcNetwork {
 public:
  // Turns on IPv4 forwarding, makes /run/netns a shared mount point (as ip does), reads the
  // state file and rewrites the table from it, so a restarted agent adopts its endpoints (those
  // whose namespace is gone, after a reboot, are dropped).
  static Result<std::unique_ptr<AwsvpcNetwork>> open(AwsvpcOptions options);

  // Leaves namespaces, links and rules in place, for a restarted agent to adopt (after deleting
  // the rules of endpoints detached just before).
  ~AwsvpcNetwork();

  AwsvpcNetwork(const AwsvpcNetwork&) = delete;
  AwsvpcNetwork& operator=(const AwsvpcNetwork&) = delete;

  // Sets up endpoint `spec.id`. For an id already attached with the same IP (and MAC, if given)
  // it returns that endpoint, updating its ingress rules if they differ; another IP is
  // kResourceInUse, as is an IP that another id of this network holds or that is routed to
  // another interface (another network's task). On an error, whatever was set up is undone.
  Result<AwsvpcEndpoint> attach(const AwsvpcSpec& spec);

  // Replaces that endpoint's rules atomically. kNotFound for an unknown id.
  Status update_ingress(const std::string& id, const std::vector<IngressRule>& ingress);
  // The members (IPv4 addresses) of security groups that rules name as sources, replacing what
  // the groups had; one nft transaction for all of them.
  Status set_group_members(const std::map<std::string, std::vector<std::string>>& groups);

  // Removes the endpoint's route and namespace, and (soon after, in the background) its rules.
  // Detaching an unknown id succeeds.
  Status detach(const std::string& id);

  // After an agent crash: detaches every endpoint not in `live`, and removes namespaces with
  // this network's prefix and host veths named for it (by alias) that it does not know; waits
  // for the veths of removed namespaces to go, as destroy() does.
  Status reconcile(const std::set<std::string>& live);

  // Detaches everything, deletes the table, waits for the veths to go with their namespaces
  // (deleting those that some process keeps after 2 s) and removes the state file.
  Status destroy();

  std::vector<AwsvpcEndpoint> endpoints() const;
  // The namespace of endpoint `id`, or "" when there is none.
  std::string netns_path(const std::string& id) const;

 private:
  class Claim;
  struct NftJob;
  // What reconcile() and destroy() must not remove: endpoints (id → host veth) and ids with an
  // operation under way.
  struct Keep {
    std::set<std::string> busy_ids;
    std::map<std::string, std::string> endpoints;
  };

  AwsvpcNetwork(AwsvpcOptions options, int mtu);
  Status load_and_sync();
  std::string fresh_veth_name_locked(const std::string& id);
  Status attach_claimed(const AwsvpcEndpoint& endpoint);
  Status update_claimed(const AwsvpcEndpoint& endpoint);
  // Deletes the endpoints' routes and removes their namespaces (their veths go with them).
  Status remove_endpoints(const std::vector<AwsvpcEndpoint>& endpoints);
  // Namespaces with our prefix and veths named for us that `keep` does not name; then waits for
  // the veths of `removed` (and of those namespaces) to go with their namespaces.
  Status remove_strays(const std::vector<AwsvpcEndpoint>& removed, const Keep& keep);
  Keep keep_locked() const;
  // Runs `script` with `nft -f -`, in one transaction with those of concurrent callers.
  Status apply_nft(std::string script);
  // Hands the endpoints' chains and elements to the collector thread, which deletes them in
  // the background: a deletion makes nft wait out an RCU grace period (~10-15 ms) that no
  // caller should. Their veths are gone or going, so the rules match nothing meanwhile.
  void discard_rules(const std::vector<AwsvpcEndpoint>& endpoints);
  void collect_garbage();
  void stop_collector();  // after the collector has run what it was given
  Status save_locked();

  AwsvpcOptions options_;
  StateFile state_file_;  // options_.state_file; written with mutex_ held
  int mtu_ = 0;
  std::uint64_t veth_seed_ = 0;  // with veths_made_: a new veth name on every attach

  // The maps below and the state file; held across no command but open()'s nft.
  Result<std::string> group_members_script(
      const std::map<std::string, std::vector<std::string>>& groups) const;
  std::filesystem::path groups_file() const;

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::set<std::string> claimed_;                 // ids with an attach/detach/update under way
  std::map<std::string, std::string> ip_owners_;  // IP → id, attached or being attached
  std::map<std::string, AwsvpcEndpoint> endpoints_;
  std::mutex groups_mutex_;
  std::map<std::string, std::vector<std::string>> group_members_;  // as last set, by group
  std::uint64_t veths_made_ = 0;
  bool destroyed_ = false;

  std::mutex nft_mutex_;
  std::condition_variable nft_idle_;
  std::vector<NftJob*> nft_queue_;
  bool nft_running_ = false;

  std::mutex garbage_mutex_;
  std::condition_variable garbage_ready_;
  std::vector<std::string> garbage_;  // nft scripts
  bool stopping_ = false;
  std::thread collector_;
};

// A listening TCP socket bound to address:port inside the network namespace at netns_path
// (setns on a short-lived thread; the socket keeps that namespace). Non-blocking, CLOEXEC,
// SO_REUSEADDR. kResourceInUse when the address is taken.
Result<UniqueFd> listen_in_namespace(const std::string& netns_path, const std::string& address,
                                     std::uint16_t port);

// The pure parts, for tests: the nft commands for one endpoint's chain, rules and map element
// (an existing chain's rules are replaced), and those that (re)create the table, empty.
std::string awsvpc_table_script(const AwsvpcOptions& options);
std::string awsvpc_endpoint_script(const AwsvpcOptions& options, const AwsvpcEndpoint& endpoint);
// kInvalidParameter unless every rule has a known protocol, from_port ≤ to_port and IPv4
// CIDR sources.
Status validate_ingress(const std::vector<IngressRule>& ingress);

// The state file's contents, and back.
// Ingress rules as JSON (camelCase, as the agent protocol's "ingress" has them), and back;
// entries that are not objects are skipped.
boost::json::array ingress_rules_json(const std::vector<IngressRule>& ingress);
std::vector<IngressRule> parse_ingress_rules(const boost::json::array* list);
std::string awsvpc_state_json(const std::vector<AwsvpcEndpoint>& endpoints);
Result<std::vector<AwsvpcEndpoint>> parse_awsvpc_state(std::string_view text);

}  // namespace wharf::agent

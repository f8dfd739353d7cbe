// A small rtnetlink client: the link, address, route and neighbour requests the awsvpc network
// makes, sent from the agent itself instead of through `ip` (each process costs milliseconds).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

using MacAddress = std::array<std::uint8_t, 6>;

// "02:42:ac:1f:00:07" (either case).
Result<MacAddress> parse_mac(std::string_view text);

// A veth pair made in one request: `name` (up) in the socket's namespace and `peer_name` (down)
// in the network namespace open at `peer_netns_fd`.
struct VethPair {
  std::string name;
  MacAddress mac{};
  std::string peer_name;
  MacAddress peer_mac{};
  int mtu = 1500;
  std::uint32_t group = 0;  // the host end's interface group
  int peer_netns_fd = -1;
};

// Addresses are IPv4 in host byte order, as Ipv4Prefix holds them. A failed request's error
// code says why: kResourceInUse for EEXIST, kNotFound for ENOENT/ESRCH/ENODEV, kInternal else;
// its message quotes the kernel's extended ack where there is one.
class RouteNetlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's network namespace. It keeps acting on that
  // namespace whichever thread uses it later.
  static Result<RouteNetlink> open();

  Result<int> link_index(const std::string& name);
  Status add_veth_pair(const VethPair& pair);
  Status set_link_up(int index);
  // Waits until link `index` is operationally up (IF_OPER_UP; IFF_RUNNING also shows the
  // "unknown" state a new link has before the watcher first looks at it). Until the kernel's link
  // watcher has seen a new veth's carrier, the link's queue discards what is sent through it, so a
  // task's first packets, or the first ARP request towards it, would be lost (TCP then waits a
  // second to retry). The watcher runs on a kernel worker, later under load.
  Status await_link_running(int index, std::chrono::milliseconds limit = std::chrono::seconds(3));
  // The interface's alias (`ip link set … alias`), its ifalias in /sys/class/net.
  Status set_link_alias(int index, std::string_view alias);
  // Enslaves link `index` to `master` (a bridge), as `ip link set … master` does.
  Status set_link_master(int index, int master);
  Status delete_link(int index);
  Status add_address(int index, std::uint32_t address, int prefix_length, bool host_scope);
  // A route to `destination`/`length` out of link `index`: via `gateway`, or (0) on the link.
  Status add_route(int index, std::uint32_t destination, int length, std::uint32_t gateway = 0);
  Status delete_route(int index, std::uint32_t destination, int length);
  Status add_permanent_neighbour(int index, std::uint32_t address, const MacAddress& mac);

 private:
  explicit RouteNetlink(UniqueFd fd) : fd_(std::move(fd)) {}
  class Message;
  struct LinkReply;
  // Sends `message` and waits for its acknowledgement; a link's description lands in `link`.
  Status transact(Message& message, std::string_view what, LinkReply* link = nullptr);

  UniqueFd fd_;
  std::uint32_t sequence_ = 0;
};

}  // namespace wharf::agent

// RouteNetlink (see rtnetlink.hpp): requests built as nlmsghdr + family header + attributes.
#include "agent/rtnetlink.hpp"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

namespace wharf::agent {

namespace {

std::string errno_message(int error) {
  return std::generic_category().message(error);
}

ErrorCode code_for_errno(int error) {
  switch (error) {
    case EEXIST:
      return ErrorCode::kResourceInUse;
    case ENOENT:
    case ESRCH:
    case ENODEV:
      return ErrorCode::kNotFound;
    default:
      return ErrorCode::kInternal;
  }
}

std::uint32_t network_order(std::uint32_t address) {
  return htonl(address);
}

}  // namespace

Result<MacAddress> parse_mac(std::string_view text) {
  MacAddress mac{};
  if (text.size() != 17) return invalid("'" + std::string(text) + "' is not a MAC address");
  for (std::size_t byte_idx = 0; byte_idx < mac.size(); ++byte_idx) {
    const char* at = text.data() + byte_idx * 3;
    auto [end, error] = std::from_chars(at, at + 2, mac[byte_idx], 16);
    bool separator_ok = byte_idx == 5 || at[2] == ':';
    if (error != std::errc() || end != at + 2 || !separator_ok) {
      return invalid("'" + std::string(text) + "' is not a MAC address");
    }
  }
  return mac;
}

// What a link's description (RTM_NEWLINK) says that the requests need.
struct RouteNetlink::LinkReply {
  int index = 0;
  std::uint8_t operstate = IF_OPER_UNKNOWN;
};

// One request: the netlink header, the family's header, then attributes (nested ones too),
// each padded to 4 bytes as the kernel expects.
class RouteNetlink::Message {
 public:
  template <typename Header>
  Message(std::uint16_t type, std::uint16_t flags, const Header& header) {
    nlmsghdr netlink{};
    netlink.nlmsg_type = type;
    netlink.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK);
    append(&netlink, sizeof netlink);
    append(&header, sizeof header);
  }

  template <typename Header>
  void header(const Header& header) {
    append(&header, sizeof header);
  }
  void attribute(std::uint16_t type, const void* data, std::size_t size) {
    rtattr attr{};
    attr.rta_type = type;
    attr.rta_len = static_cast<std::uint16_t>(RTA_LENGTH(size));
    append(&attr, sizeof attr);
    append(data, size);
  }
  void attribute_u32(std::uint16_t type, std::uint32_t value) {
    attribute(type, &value, sizeof value);
  }
  void attribute_string(std::uint16_t type, std::string_view text) {
    std::string terminated(text);
    attribute(type, terminated.c_str(), terminated.size() + 1);
  }
  std::size_t begin_nested(std::uint16_t type) {
    std::size_t offset = bytes_.size();
    attribute(type, nullptr, 0);
    return offset;
  }
  void end_nested(std::size_t offset) {
    auto length = static_cast<std::uint16_t>(bytes_.size() - offset);
    std::memcpy(bytes_.data() + offset + offsetof(rtattr, rta_len), &length, sizeof length);
  }

  std::vector<char>& finish(std::uint32_t sequence) {
    auto* netlink = reinterpret_cast<nlmsghdr*>(bytes_.data());
    netlink->nlmsg_len = static_cast<std::uint32_t>(bytes_.size());
    netlink->nlmsg_seq = sequence;
    return bytes_;
  }

 private:
  void append(const void* data, std::size_t size) {
    std::size_t offset = bytes_.size();
    bytes_.resize(NLMSG_ALIGN(offset + size), 0);
    if (size > 0) std::memcpy(bytes_.data() + offset, data, size);
  }

  std::vector<char> bytes_;
};

Result<RouteNetlink> RouteNetlink::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return fail(ErrorCode::kInternal, "opening a netlink socket: " + errno_message(errno));
  int on = 1;
  // Errors without the request echoed back, but with the kernel's message where it has one.
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    return fail(ErrorCode::kInternal, "binding a netlink socket: " + errno_message(errno));
  }
  return RouteNetlink(std::move(fd));
}

namespace {

// The kernel's own words in an extended ack (NLMSGERR_ATTR_MSG), if any.
std::string extended_ack_message(const nlmsghdr* reply) {
  if ((reply->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  std::size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nlmsgerr));
  const char* base = reinterpret_cast<const char*>(reply);
  while (offset + sizeof(nlattr) <= reply->nlmsg_len) {
    nlattr attr;
    std::memcpy(&attr, base + offset, sizeof attr);
    if (attr.nla_len < sizeof attr || offset + attr.nla_len > reply->nlmsg_len) break;
    if (attr.nla_type == NLMSGERR_ATTR_MSG) {
      return std::string(base + offset + NLA_HDRLEN,
                         strnlen(base + offset + NLA_HDRLEN, attr.nla_len - NLA_HDRLEN));
    }
    offset += NLA_ALIGN(attr.nla_len);
  }
  return {};
}

}  // namespace

Status RouteNetlink::transact(Message& message, std::string_view what, LinkReply* link) {
  std::vector<char>& bytes = message.finish(++sequence_);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent = ::sendto(fd_.get(), bytes.data(), bytes.size(), 0,
                          reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  if (sent != static_cast<ssize_t>(bytes.size())) {
    return fail(ErrorCode::kInternal, std::string(what) + ": sending: " + errno_message(errno));
  }
  alignas(nlmsghdr) char buffer[32768];  // a link's description is a few KiB
  while (true) {
    ssize_t got = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return fail(ErrorCode::kInternal, std::string(what) + ": receiving: " + errno_message(errno));
    }
    auto length = static_cast<std::uint32_t>(got);
    for (auto* reply = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(reply, length);
         reply = NLMSG_NEXT(reply, length)) {
      if (reply->nlmsg_seq != sequence_) continue;  // a late answer to an earlier request
      if (reply->nlmsg_type == RTM_NEWLINK && link != nullptr &&
          reply->nlmsg_len >= NLMSG_LENGTH(sizeof(ifinfomsg))) {
        const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(reply));
        link->index = info->ifi_index;
        int left = static_cast<int>(IFLA_PAYLOAD(reply));
        for (const rtattr* attr = IFLA_RTA(info); RTA_OK(attr, left); attr = RTA_NEXT(attr, left)) {
          if (attr->rta_type == IFLA_OPERSTATE && RTA_PAYLOAD(attr) >= 1) {
            link->operstate = *static_cast<const std::uint8_t*>(RTA_DATA(attr));
          }
        }
        continue;
      }
      if (reply->nlmsg_type != NLMSG_ERROR) continue;
      int error = -static_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error;
      if (error == 0) return {};
      std::string message = std::string(what) + ": " + errno_message(error);
      if (std::string kernel_says = extended_ack_message(reply); !kernel_says.empty()) {
        message += " (" + kernel_says + ")";
      }
      return fail(code_for_errno(error), std::move(message));
    }
  }
}

Result<int> RouteNetlink::link_index(const std::string& name) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  Message message(RTM_GETLINK, 0, info);
  message.attribute_string(IFLA_IFNAME, name);
  LinkReply link;
  if (auto done = transact(message, "looking up link " + name, &link); !done) {
    return std::unexpected(done.error());
  }
  if (link.index <= 0) return fail(ErrorCode::kNotFound, "link " + name + " has no index");
  return link.index;
}

Status RouteNetlink::await_link_running(int index, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string what = "waiting for link " + std::to_string(index) + " to carry traffic";
  while (true) {
    ifinfomsg info{};
    info.ifi_family = AF_UNSPEC;
    info.ifi_index = index;
    Message message(RTM_GETLINK, 0, info);
    LinkReply link;
    if (auto done = transact(message, what, &link); !done) return done;
    if (link.operstate == IF_OPER_UP) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(ErrorCode::kInternal, what + ": the kernel has not brought it up within " +
                                            std::to_string(limit.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

Status RouteNetlink::add_veth_pair(const VethPair& pair) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_flags = IFF_UP;
  info.ifi_change = IFF_UP;
  Message message(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, info);
  message.attribute_string(IFLA_IFNAME, pair.name);
  message.attribute(IFLA_ADDRESS, pair.mac.data(), pair.mac.size());
  message.attribute_u32(IFLA_MTU, static_cast<std::uint32_t>(pair.mtu));
  message.attribute_u32(IFLA_GROUP, pair.group);
  std::size_t link_info = message.begin_nested(IFLA_LINKINFO);
  message.attribute_string(IFLA_INFO_KIND, "veth");
  std::size_t info_data = message.begin_nested(IFLA_INFO_DATA);
  std::size_t peer = message.begin_nested(VETH_INFO_PEER);
  // The peer's own ifinfomsg. Not up: a veth end opened before its pair is complete is
  // ENOTCONN, so the caller brings it up in its namespace.
  ifinfomsg peer_info{};
  peer_info.ifi_family = AF_UNSPEC;
  message.header(peer_info);
  message.attribute_string(IFLA_IFNAME, pair.peer_name);
  message.attribute(IFLA_ADDRESS, pair.peer_mac.data(), pair.peer_mac.size());
  message.attribute_u32(IFLA_MTU, static_cast<std::uint32_t>(pair.mtu));
  message.attribute_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(pair.peer_netns_fd));
  message.end_nested(peer);
  message.end_nested(info_data);
  message.end_nested(link_info);
  return transact(message, "creating veth pair " + pair.name + "/" + pair.peer_name);
}

Status RouteNetlink::set_link_up(int index) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  info.ifi_flags = IFF_UP;
  info.ifi_change = IFF_UP;
  Message message(RTM_NEWLINK, 0, info);
  return transact(message, "setting link " + std::to_string(index) + " up");
}

Status RouteNetlink::set_link_alias(int index, std::string_view alias) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  Message message(RTM_NEWLINK, 0, info);
  message.attribute_string(IFLA_IFALIAS, alias);
  return transact(message, "naming link " + std::to_string(index) + " " + std::string(alias));
}

Status RouteNetlink::set_link_master(int index, int master) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  Message message(RTM_NEWLINK, 0, info);
  message.attribute_u32(IFLA_MASTER, static_cast<std::uint32_t>(master));
  return transact(message,
                  "putting link " + std::to_string(index) + " on link " + std::to_string(master));
}

Status RouteNetlink::delete_link(int index) {
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = index;
  Message message(RTM_DELLINK, 0, info);
  return transact(message, "deleting link " + std::to_string(index));
}

Status RouteNetlink::add_address(int index, std::uint32_t address, int prefix_length,
                                 bool host_scope) {
  ifaddrmsg header{};
  header.ifa_family = AF_INET;
  header.ifa_prefixlen = static_cast<unsigned char>(prefix_length);
  header.ifa_scope = host_scope ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  header.ifa_index = static_cast<std::uint32_t>(index);
  Message message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, header);
  std::uint32_t wire = network_order(address);
  message.attribute(IFA_LOCAL, &wire, sizeof wire);
  message.attribute(IFA_ADDRESS, &wire, sizeof wire);
  return transact(message, "adding an address to link " + std::to_string(index));
}

namespace {

rtmsg route_header(int length, bool on_link) {
  rtmsg header{};
  header.rtm_family = AF_INET;
  header.rtm_dst_len = static_cast<unsigned char>(length);
  header.rtm_table = RT_TABLE_MAIN;
  header.rtm_protocol = RTPROT_BOOT;
  header.rtm_scope = on_link ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  header.rtm_type = RTN_UNICAST;
  return header;
}

}  // namespace

Status RouteNetlink::add_route(int index, std::uint32_t destination, int length,
                               std::uint32_t gateway) {
  Message message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route_header(length, gateway == 0));
  std::uint32_t wire = network_order(destination);
  if (length > 0) message.attribute(RTA_DST, &wire, sizeof wire);
  std::uint32_t via = network_order(gateway);
  if (gateway != 0) message.attribute(RTA_GATEWAY, &via, sizeof via);
  message.attribute_u32(RTA_OIF, static_cast<std::uint32_t>(index));
  return transact(message, "adding a route to link " + std::to_string(index));
}

Status RouteNetlink::delete_route(int index, std::uint32_t destination, int length) {
  rtmsg header = route_header(length, true);
  header.rtm_scope = RT_SCOPE_NOWHERE;  // any scope
  header.rtm_protocol = 0;              // any protocol
  Message message(RTM_DELROUTE, 0, header);
  std::uint32_t wire = network_order(destination);
  if (length > 0) message.attribute(RTA_DST, &wire, sizeof wire);
  message.attribute_u32(RTA_OIF, static_cast<std::uint32_t>(index));
  return transact(message, "deleting a route from link " + std::to_string(index));
}

Status RouteNetlink::add_permanent_neighbour(int index, std::uint32_t address,
                                             const MacAddress& mac) {
  ndmsg header{};
  header.ndm_family = AF_INET;
  header.ndm_ifindex = index;
  header.ndm_state = NUD_PERMANENT;
  Message message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, header);
  std::uint32_t wire = network_order(address);
  message.attribute(NDA_DST, &wire, sizeof wire);
  message.attribute(NDA_LLADDR, mac.data(), mac.size());
  return transact(message, "adding a neighbour on link " + std::to_string(index));
}

}  // namespace wharf::agent

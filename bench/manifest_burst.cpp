// 1,000 concurrent GETs, measured one burst at a time: N keep-alive connections are opened and
// each is used once (untimed), then every round writes one request on every connection as
// fast as one thread can and times each request from its own write to the last byte of its
// response. Prints one JSON object with the latency percentiles over all rounds.
//
//   manifest_burst HOST PORT PATH [--connections N] [--rounds R] [--header 'Name: value']...
//
// wrk -c N measures something else: it keeps N requests in flight at all times, so its latency
// is N / throughput whatever the server does per request (see bench/RESULTS.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  std::string received;
  Clock::time_point sent;
  bool done = false;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "manifest_burst: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

int connect_to(const sockaddr_in& address) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    die("connect");
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Whether `data` holds a whole response; sets `status`. Content-Length framing only.
bool complete(const std::string& data, int& status) {
  std::size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  status = std::atoi(data.c_str() + 9);  // "HTTP/1.1 200"
  std::size_t length = 0;
  std::string lower = data.substr(0, end);
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (std::size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
    length = std::strtoull(lower.c_str() + at + 17, nullptr, 10);
  }
  return data.size() >= end + 4 + length;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size()));
  return values[std::min(index, values.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH [--connections N] [--rounds R] [--header H]\n",
                 argv[0]);
    return 2;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) die("address");
  std::string request =
      std::string("GET ") + argv[3] + " HTTP/1.1\r\nHost: " + argv[1] + ":" + argv[2] + "\r\n";
  int connections = 1000;
  int rounds = 20;
  if ((argc - 4) % 2 != 0) {
    std::fprintf(stderr, "manifest_burst: %s needs a value\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 4; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--connections")
      connections = std::atoi(argv[i + 1]);
    else if (flag == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else if (flag == "--header")
      request += std::string(argv[i + 1]) + "\r\n";
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  request += "\r\n";

  std::vector<Connection> all(static_cast<std::size_t>(connections));
  int poller = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < all.size(); ++i) {
    all[i].fd = connect_to(address);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    if (::epoll_ctl(poller, EPOLL_CTL_ADD, all[i].fd, &event) != 0) die("epoll_ctl");
  }

  std::vector<double> latencies;    // ms, from each request's own write
  std::vector<double> since_burst;  // ms, from the round's first write
  std::vector<double> round_p99;
  int errors = 0;
  std::vector<epoll_event> events(1024);
  char buffer[65536];
  for (int round = 0; round <= rounds; ++round) {  // round 0 warms every connection up
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Clock::time_point start = Clock::now();
    for (Connection& each : all) {
      each.received.clear();
      each.done = false;
      each.sent = Clock::now();
      if (::send(each.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
        die("send");
      }
    }
    std::size_t left = all.size();
    std::vector<double> this_round;
    while (left > 0) {
      int ready = ::epoll_wait(poller, events.data(), static_cast<int>(events.size()), 10000);
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) die("waiting for responses (10 s)");
      for (int e = 0; e < ready; ++e) {
        Connection& each = all[events[static_cast<std::size_t>(e)].data.u64];
        ssize_t got = ::recv(each.fd, buffer, sizeof buffer, 0);
        if (got <= 0) die("connection closed by the server");
        each.received.append(buffer, static_cast<std::size_t>(got));
        int status = 0;
        if (each.done || !complete(each.received, status)) continue;
        Clock::time_point now = Clock::now();
        each.done = true;
        --left;
        if (status != 200) ++errors;
        if (round == 0) continue;
        double ms = std::chrono::duration<double, std::milli>(now - each.sent).count();
        this_round.push_back(ms);
        since_burst.push_back(std::chrono::duration<double, std::milli>(now - start).count());
      }
    }
    if (round > 0) {
      round_p99.push_back(percentile(this_round, 99));
      latencies.insert(latencies.end(), this_round.begin(), this_round.end());
    }
  }
  std::printf(
      "{\"connections\": %d, \"rounds\": %d, \"requests\": %zu, \"errors\": %d, "
      "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
      "\"round_p99_median_ms\": %.3f, \"round_p99_worst_ms\": %.3f, "
      "\"since_burst_p99_ms\": %.3f}\n",
      connections, rounds, latencies.size(), errors, percentile(latencies, 50),
      percentile(latencies, 90), percentile(latencies, 99),
      latencies.empty() ? 0.0 : *std::max_element(latencies.begin(), latencies.end()),
      percentile(round_p99, 50),
      round_p99.empty() ? 0.0 : *std::max_element(round_p99.begin(), round_p99.end()),
      percentile(since_burst, 99));
  for (Connection& each : all) ::close(each.fd);
  return errors == 0 ? 0 : 1;
}

// The floor for manifest_burst: an HTTP responder that does no work at all. Each loop (two,
// sharing the port through SO_REUSEPORT) reads a request and writes a fixed response the size
// of a Wharf manifest GET's. What it measures is the kernel's loopback TCP and the client on
// this machine, the least any server could reach here.
//
//   floor_server PORT        (127.0.0.1; runs until killed)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

void serve(std::uint16_t port, const std::string& response) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 4096) != 0) {
    std::perror("floor_server: listening");
    std::exit(1);
  }
  int poller = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  ::epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  std::vector<epoll_event> events(128);
  char buffer[8192];
  while (true) {
    int ready = ::epoll_wait(poller, events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < ready; ++i) {
      int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == listener) {
        int client;
        while ((client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
               0) {
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event readable{};
          readable.events = EPOLLIN;
          readable.data.fd = client;
          ::epoll_ctl(poller, EPOLL_CTL_ADD, client, &readable);
        }
        continue;
      }
      ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) {
        ::close(fd);
        continue;
      }
      // One request per read: manifest_burst never has two in flight on a connection.
      if (::memmem(buffer, static_cast<std::size_t>(got), "\r\n\r\n", 4) != nullptr) {
        ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  std::string body(520, 'x');  // a one-layer OCI manifest
  std::string response =
      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
      "Docker-Content-Digest: sha256:" +
      std::string(64, '0') +
      "\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::thread second(serve, port, std::cref(response));
  serve(port, response);
}

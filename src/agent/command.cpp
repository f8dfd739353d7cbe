// run_command (see command.hpp).
#include "agent/command.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "common/text.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {

namespace {

Status write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t put = write(fd, text.data(), text.size());
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return std::unexpected(errno_error("writing command input"));
    text.remove_prefix(static_cast<std::size_t>(put));
  }
  if (lseek(fd, 0, SEEK_SET) < 0) return std::unexpected(errno_error("rewinding command input"));
  return {};
}

}  // namespace

Result<std::string> read_from_start(int fd) {
  if (lseek(fd, 0, SEEK_SET) < 0) return std::unexpected(errno_error("rewinding command output"));
  std::string text;
  char buffer[8192];
  while (true) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return std::unexpected(errno_error("reading command output"));
    if (got == 0) return text;
    text.append(buffer, static_cast<std::size_t>(got));
  }
}

namespace {

Result<CommandOutput> run_in(const std::vector<std::string>& argv, std::string_view input,
                             std::chrono::milliseconds timeout, ProcessReaper& reaper) {
  UniqueFd in;
  if (!input.empty()) {
    in.reset(memfd_create("command-stdin", MFD_CLOEXEC));
    if (!in) return std::unexpected(errno_error("creating the input file"));
    if (auto written = write_all(in.get(), input); !written)
      return std::unexpected(written.error());
  }
  UniqueFd out(memfd_create("command-stdout", MFD_CLOEXEC));
  UniqueFd err(memfd_create("command-stderr", MFD_CLOEXEC));
  if (!out || !err) return std::unexpected(errno_error("creating output files"));
  auto pid = reaper.spawn(argv, ChildIo{in.get(), out.get(), err.get()});
  if (!pid) return std::unexpected(pid.error());
  auto status = reaper.wait(*pid, timeout);
  if (status && !*status) {
    kill(*pid, SIGKILL);  // not reaped yet, so the pid is still the command's
    (void)reaper.wait(*pid, std::nullopt);
    reaper.forget(*pid);
    return fail(ErrorCode::kInternal,
                "it did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  reaper.forget(*pid);
  if (!status) return std::unexpected(status.error());
  auto out_text = read_from_start(out.get());
  if (!out_text) return std::unexpected(out_text.error());
  auto err_text = read_from_start(err.get());
  if (!err_text) return std::unexpected(err_text.error());
  return CommandOutput{**status, std::move(*out_text), std::move(*err_text)};
}

}  // namespace

std::string command_text(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    text += arg;
  }
  return text;
}

Result<CommandOutput> run_command(const std::vector<std::string>& argv, std::string_view input,
                                  std::chrono::milliseconds timeout, ProcessReaper& reaper) {
  auto output = run_in(argv, input, timeout, reaper);
  if (!output)
    return std::unexpected(std::move(output.error()).context("`" + command_text(argv) + "`"));
  return output;
}

Result<std::string> run_checked(const std::vector<std::string>& argv, std::string_view input,
                                std::chrono::milliseconds timeout) {
  auto output = run_command(argv, input, timeout);
  if (!output) return std::unexpected(output.error());
  if (output->status.exit_code == 0) return std::move(output->out);
  std::string message =
      "`" + command_text(argv) + "` failed (exit " + std::to_string(output->status.exit_code) + ")";
  std::string err(trim(output->err));
  if (!err.empty()) message += ": " + err;
  return fail(ErrorCode::kInternal, std::move(message));
}

}  // namespace wharf::agent

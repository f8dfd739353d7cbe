// Runs short helper commands (ip, nft, …) through the ProcessReaper and captures their output.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "agent/process_reaper.hpp"
#include "common/error.hpp"

namespace wharf::agent {

// A helper command that takes longer than this is stuck: it is killed.
inline constexpr std::chrono::seconds kDefaultCommandTimeout{30};

struct CommandOutput {
  ExitStatus status;
  std::string out;
  std::string err;
};

// The command line as a person would type it, for messages: `ip -batch -`.
std::string command_text(const std::vector<std::string>& argv);

// Runs argv (argv[0] looked up on PATH) with `input` as its standard input and waits for it;
// its stdout and stderr are kept in memory files, so no pipe can fill up. An error only when it
// could not be started or timed out; a non-zero exit is in the output's status.
Result<CommandOutput> run_command(const std::vector<std::string>& argv, std::string_view input = {},
                                  std::chrono::milliseconds timeout = kDefaultCommandTimeout,
                                  ProcessReaper& reaper = ProcessReaper::instance());

// Everything in the file behind `fd`, read from its start (a memory file a child wrote).
Result<std::string> read_from_start(int fd);

// As run_command, but a non-zero exit is an error naming the command and quoting its stderr.
// Returns the command's stdout.
Result<std::string> run_checked(const std::vector<std::string>& argv, std::string_view input = {},
                                std::chrono::milliseconds timeout = kDefaultCommandTimeout);

}  // namespace wharf::agent

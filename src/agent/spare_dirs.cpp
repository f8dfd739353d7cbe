#include "agent/spare_dirs.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <system_error>

#include "agent/files.hpp"
#include "agent/remove_tree.hpp"
#include "common/log.hpp"
#include "common/unique_fd.hpp"

namespace wharf::agent {
namespace fs = std::filesystem;

SpareDirs::SpareDirs(fs::path dir, std::vector<SpareShape> shapes, std::size_t per_kind)
    : dir_(std::move(dir)),
      shapes_(std::move(shapes)),
      per_kind_(per_kind),
      ready_(shapes_.size()),
      making_(shapes_.size()) {}

SpareDirs::~SpareDirs() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string SpareDirs::name(std::size_t kind, std::uint64_t number) const {
  return std::to_string(kind) + "-" + std::to_string(number);
}

Status SpareDirs::load() {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error)
    return fail(ErrorCode::kInternal, "creating " + dir_.string() + ": " + error.message());
  if (auto marked = mark_top_directory(dir_); !marked) {
    spdlog::warn("spares: {}", marked.error().message);
  }
  std::vector<std::string> half_made;
  {
    std::lock_guard lock(mutex_);
    for (const auto& entry : fs::directory_iterator(dir_, error)) {
      std::string entry_name = entry.path().filename().string();
      if (entry_name.starts_with('.')) {
        half_made.push_back(entry_name);
        continue;
      }
      std::size_t kind = 0;
      std::uint64_t number = 0;
      auto dash = entry_name.find('-');
      if (dash == std::string::npos) continue;
      const char* begin = entry_name.data();
      auto [kind_end, kind_error] = std::from_chars(begin, begin + dash, kind);
      auto [end, number_error] =
          std::from_chars(begin + dash + 1, begin + entry_name.size(), number);
      if (kind_error != std::errc() || number_error != std::errc() || kind_end != begin + dash ||
          end != begin + entry_name.size() || kind >= shapes_.size()) {
        continue;  // not ours: left alone
      }
      ready_[kind].push_back(entry_name);
      next_number_ = std::max(next_number_, number + 1);
    }
    if (error) {
      return fail(ErrorCode::kInternal, "listing " + dir_.string() + ": " + error.message());
    }
  }
  for (const std::string& entry_name : half_made) {
    if (auto removed = remove_tree(dir_ / entry_name); !removed) return removed;
  }
  return {};
}

Status SpareDirs::start() {
  if (auto loaded = load(); !loaded) return loaded;
  thread_ = std::thread([this] { refill_loop(); });
  return {};
}

bool SpareDirs::claim(std::size_t kind, const fs::path& destination) {
  std::string spare;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || kind >= ready_.size() || ready_[kind].empty()) return false;
    spare = std::move(ready_[kind].front());
    ready_[kind].pop_front();
  }
  wake_.notify_one();
  // RENAME_NOREPLACE: an empty directory at `destination` would otherwise be replaced.
  if (renameat2(AT_FDCWD, (dir_ / spare).c_str(), AT_FDCWD, destination.c_str(),
                RENAME_NOREPLACE) == 0) {
    return true;
  }
  int error = errno;
  spdlog::debug("claiming spare {} for {}: {}", spare, destination.string(),
                std::generic_category().message(error));
  std::lock_guard lock(mutex_);
  if (error == EEXIST) {
    ready_[kind].push_back(std::move(spare));  // still whole: kept
  } else if (error == EXDEV && !stopping_) {
    // The destination is on another file system (a mount inside the data dir): no spare
    // will ever move there, so no more are made.
    spdlog::info("spare directories in {} are on another file system than {}: not used",
                 dir_.string(), destination.parent_path().string());
    stopping_ = true;
    for (auto& spares : ready_) spares.clear();
  }
  return false;
}

std::size_t SpareDirs::ready(std::size_t kind) const {
  std::lock_guard lock(mutex_);
  return kind < ready_.size() ? ready_[kind].size() : 0;
}

Status SpareDirs::make(std::size_t kind, std::uint64_t number) const {
  const SpareShape& shape = shapes_[kind];
  std::string ready_name = name(kind, number);
  fs::path building = dir_ / ("." + ready_name);
  if (::mkdir(building.c_str(), shape.mode) != 0) {
    return std::unexpected(errno_error("creating " + building.string()));
  }
  // The modes as asked for, whatever the umask.
  auto set_mode = [](const fs::path& path, mode_t mode) -> Status {
    if (::chmod(path.c_str(), mode) != 0) {
      return std::unexpected(errno_error("chmod " + path.string()));
    }
    return {};
  };
  Status made = set_mode(building, shape.mode);
  for (const auto& [relative, mode] : shape.dirs) {
    if (!made) break;
    fs::path path = building / relative;
    made = ::mkdir(path.c_str(), mode) == 0
               ? set_mode(path, mode)
               : Status(std::unexpected(errno_error("creating " + path.string())));
  }
  for (const auto& [relative, mode] : shape.files) {
    if (!made) break;
    fs::path path = building / relative;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    made = fd ? set_mode(path, mode)
              : Status(std::unexpected(errno_error("creating " + path.string())));
  }
  if (made && ::rename(building.c_str(), (dir_ / ready_name).c_str()) != 0) {
    made = std::unexpected(errno_error("renaming " + building.string()));
  }
  if (!made) (void)remove_tree(building);
  return made;
}

Status SpareDirs::fill() {
  while (true) {
    std::size_t kind = shapes_.size();
    std::uint64_t number = 0;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return {};
      for (std::size_t each = 0; each < ready_.size(); ++each) {
        if (ready_[each].size() + making_[each] < per_kind_) {
          kind = each;
          break;
        }
      }
      if (kind == shapes_.size()) return {};
      number = next_number_++;
      ++making_[kind];
    }
    Status made = make(kind, number);
    std::lock_guard lock(mutex_);
    --making_[kind];
    if (!made) return made;
    ready_[kind].push_back(name(kind, number));
  }
}

void SpareDirs::refill_loop() {
  // Only when nothing else wants the CPU: spares are for the next launch, not this one.
  sched_param param{};
  (void)sched_setscheduler(0, SCHED_IDLE, &param);  // this thread only (Linux)
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    Status filled = fill();
    lock.lock();
    if (!filled) {  // a full disk, say: launches make their own directories meanwhile
      spdlog::warn("making spare directories in {}: {}", dir_.string(), filled.error().message);
      wake_.wait_for(lock, std::chrono::seconds(30), [&] { return stopping_; });
      continue;
    }
    wake_.wait(lock, [&] {
      if (stopping_) return true;
      for (const auto& spares : ready_) {
        if (spares.size() < per_kind_) return true;
      }
      return false;
    });
  }
}

}  // namespace wharf::agent

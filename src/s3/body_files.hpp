// Object and part bodies on local disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace wharf::s3 {

// Layout under the root (DATA_DIR/s3):
//   data/<id>  a body a store record names (object or part); complete and fsync'd
//   tmp/<id>   a body being received or assembled; renamed into data/ once synced
// A crash leaves at worst files in tmp/ or data/ files no record names: sweep() removes both.
class BodyFiles {
 public:
  // A body being written; not yet visible in data/.
  struct Temp {
    std::string id;
    UniqueFd fd;
  };

  explicit BodyFiles(std::filesystem::path root) : root_(std::move(root)) {}

  // Creates the directories.
  Status prepare();
  // A new empty temp file.
  Result<Temp> create();
  // Appends to a temp file (page cache only; install() syncs).
  Status write(Temp& temp, std::string_view bytes);
  // Syncs the temp file and renames it into data/ under its id. Blocks: call off the loops.
  Status install(Temp& temp);
  // A data file opened for reading; it stays readable when an overwrite removes it meanwhile.
  struct OpenBody {
    std::string id;
    UniqueFd fd;
  };
  // Opens the data files `ids`. Cheap enough to call under a lock, which keeps them from being
  // removed in between.
  Result<std::vector<OpenBody>> open_all(const std::vector<std::string>& ids) const;
  // A new data file holding the `sources`' bodies one after the other (an object's parts, or a
  // copy's source). Blocks: call off the loops. Returns its id.
  Result<std::string> concatenate(const std::vector<OpenBody>& sources);
  Result<UniqueFd> open(std::string_view id) const;
  // Removes a data file or an abandoned temp file; a missing one is fine.
  void remove(std::string_view id);
  void remove_temp(std::string_view id);
  // Removes every temp file and every data file not in `referenced`; returns how many.
  Result<std::size_t> sweep(const std::set<std::string, std::less<>>& referenced);

 private:
  std::filesystem::path data_path(std::string_view id) const { return root_ / "data" / id; }
  std::filesystem::path temp_path(std::string_view id) const { return root_ / "tmp" / id; }

  std::filesystem::path root_;
};

}  // namespace wharf::s3

// Unit tests for package database parsing and the layer walk, over crafted layer tars.
#include "registry/package_inventory.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "registry/test_layers.hpp"

namespace wharf::registry {
namespace {

constexpr const char* kDebianOsRelease =
    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
    "VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";

constexpr const char* kDpkgStatus =
    "Package: base-files\n"
    "Status: install ok installed\n"
    "Priority: required\n"
    "Version: 12.4+deb12u5\n"
    "Architecture: amd64\n"
    "Description: Debian base system miscellaneous files\n"
    " This package contains the basic filesystem hierarchy.\n"
    "\n"
    "Package: libssl3\n"
    "Status: install ok installed\n"
    "Source: openssl (3.0.11-1~deb12u2)\n"
    "Version: 3.0.11-1~deb12u2+b1\n"
    "Architecture: amd64\n"
    "\n"
    "Package: removed-pkg\n"
    "Status: deinstall ok config-files\n"
    "Version: 1.0\n"
    "\n"
    "Package: libc6\n"
    "Status: hold ok installed\n"
    "Source: glibc\n"
    "Version: 2.36-9+deb12u4\n";

constexpr const char* kApkInstalled =
    "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n"
    "C:Q1def=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nF:lib\nR:libcrypto.so.3\n";

TEST(OsRelease, ParsesQuotedAndBareValues) {
  OsRelease debian = parse_os_release(kDebianOsRelease);
  EXPECT_EQ(debian.id, "debian");
  EXPECT_EQ(debian.version_id, "12");
  EXPECT_EQ(debian.pretty_name, "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(debian.key(), "debian:12");
  OsRelease alpine = parse_os_release("# comment\nID='alpine'\nVERSION_ID=3.19.1\n");
  EXPECT_EQ(alpine.key(), "alpine:3.19.1");
  OsRelease escaped = parse_os_release("ID=\"x\\\"y\"\n");
  EXPECT_EQ(escaped.id, "x\"y");
  EXPECT_EQ(parse_os_release("ID=debian\n").key(), "debian");
  EXPECT_EQ(parse_os_release("").key(), "");
}

TEST(DpkgStatus, KeepsInstalledPackagesWithTheirSources) {
  auto packages = parse_dpkg_status(kDpkgStatus);
  ASSERT_EQ(packages.size(), 3u);
  EXPECT_EQ(packages[0].name, "base-files");
  EXPECT_EQ(packages[0].version, "12.4+deb12u5");
  EXPECT_EQ(packages[0].source_name, "");
  EXPECT_EQ(packages[1].name, "libssl3");
  EXPECT_EQ(packages[1].source_name, "openssl");
  EXPECT_EQ(packages[1].source_version, "3.0.11-1~deb12u2");
  EXPECT_EQ(packages[1].architecture, "amd64");
  EXPECT_EQ(packages[2].name, "libc6");  // "hold ok installed" is installed
  EXPECT_EQ(packages[2].source_name, "glibc");
  EXPECT_EQ(packages[2].source_version, "");
  // Without Status, a paragraph counts only in status.d files.
  EXPECT_TRUE(parse_dpkg_status("Package: a\nVersion: 1\n").empty());
  EXPECT_EQ(parse_dpkg_status("Package: a\nVersion: 1\n", true).size(), 1u);
  // CRLF line ends and a missing final newline are fine.
  EXPECT_EQ(parse_dpkg_status("Package: a\r\nStatus: install ok installed\r\nVersion: 1").size(),
            1u);
}

TEST(ApkInstalled, ReadsNameVersionOrigin) {
  auto packages = parse_apk_installed(kApkInstalled);
  ASSERT_EQ(packages.size(), 2u);
  EXPECT_EQ(packages[0].name, "musl");
  EXPECT_EQ(packages[0].version, "1.2.4-r2");
  EXPECT_EQ(packages[1].name, "libcrypto3");
  EXPECT_EQ(packages[1].source_name, "openssl");
  EXPECT_EQ(packages[1].manager, PackageManager::kApk);
}

// ---- crafted layers ----

using test_layers::Compression;
using Entry = test_layers::LayerEntry;

class LayerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/wharf-layers-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    std::filesystem::remove_all(dir_);
  }

  // Writes a layer archive and returns it opened for reading.
  int layer(const std::vector<Entry>& entries, Compression compression = Compression::kGzip) {
    return raw_file(test_layers::layer_tar(entries, compression));
  }

  int raw_file(const std::string& bytes) {
    std::string path = dir_ + "/raw" + std::to_string(fds_.size());
    FILE* file = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), file);
    std::fclose(file);
    return open_file(path);
  }

  static std::vector<std::string> names(const PackageInventory& inventory) {
    std::vector<std::string> result;
    for (const auto& package : inventory.packages) {
      result.push_back(package.name + "=" + package.version);
    }
    return result;
  }

 private:
  int open_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    fds_.push_back(fd);
    return fd;
  }

  std::string dir_;
  std::vector<int> fds_;
};

TEST_F(LayerFiles, ReadsDebianLayerInEveryCompression) {
  for (auto compression : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    int fd = layer({{"etc/", "", Entry::kDirectory},
                    {"etc/os-release", "../usr/lib/os-release", Entry::kSymlink},
                    {"usr/lib/os-release", kDebianOsRelease},
                    {"./var/lib/dpkg/status", kDpkgStatus}},
                   compression);
    std::vector<int> layers{fd};
    auto inventory = read_package_inventory(layers);
    ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
    EXPECT_EQ(inventory->os.key(), "debian:12");
    EXPECT_EQ(names(*inventory),
              (std::vector<std::string>{"base-files=12.4+deb12u5", "libc6=2.36-9+deb12u4",
                                        "libssl3=3.0.11-1~deb12u2+b1"}));
  }
}

TEST_F(LayerFiles, UpperLayersReplaceLowerFiles) {
  std::vector<int> layers{
      layer({{"etc/os-release", "ID=debian\nVERSION_ID=11\n"},
             {"var/lib/dpkg/status", "Package: old\nStatus: install ok installed\nVersion: 1\n"}}),
      layer({{"unrelated/file", "x"}}),
      layer({{"etc/os-release", kDebianOsRelease},
             {"var/lib/dpkg/status", "Package: new\nStatus: install ok installed\nVersion: 2\n"}},
            Compression::kZstd)};
  auto inventory = read_package_inventory(layers);
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(inventory->os.key(), "debian:12");
  EXPECT_EQ(names(*inventory), std::vector<std::string>{"new=2"});
}

TEST_F(LayerFiles, WhiteoutsHideLowerFiles) {
  std::vector<int> deleted_file{
      layer({{"var/lib/dpkg/status", "Package: gone\nStatus: install ok installed\nVersion: 1\n"},
             {"lib/apk/db/installed", kApkInstalled}}),
      layer({{"var/lib/dpkg/.wh.status", ""}})};
  auto inventory = read_package_inventory(deleted_file);
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(names(*inventory), (std::vector<std::string>{"libcrypto3=3.1.4-r5", "musl=1.2.4-r2"}));

  std::vector<int> deleted_dir{
      layer({{"var/lib/dpkg/status", "Package: gone\nStatus: install ok installed\nVersion: 1\n"}}),
      layer({{"var/lib/.wh.dpkg", ""}})};
  inventory = read_package_inventory(deleted_dir);
  ASSERT_TRUE(inventory.has_value());
  EXPECT_TRUE(inventory->packages.empty());

  std::vector<int> opaque{
      layer({{"var/lib/dpkg/status", "Package: gone\nStatus: install ok installed\nVersion: 1\n"},
             {"etc/os-release", "ID=debian\nVERSION_ID=11\n"}}),
      layer({{"var/lib/dpkg/.wh..wh..opq", ""}, {"var/lib/dpkg/available", ""}})};
  inventory = read_package_inventory(opaque);
  ASSERT_TRUE(inventory.has_value());
  EXPECT_TRUE(inventory->packages.empty());
  EXPECT_EQ(inventory->os.key(), "debian:11");  // the opaque dir hides only var/lib/dpkg
}

TEST_F(LayerFiles, AFileBesideItsOwnWhiteoutSurvives) {
  // Whiteouts hide lower layers only; a file re-created in the same layer stays.
  std::vector<int> layers{
      layer({{"var/lib/dpkg/status", "Package: old\nStatus: install ok installed\nVersion: 1\n"}}),
      layer({{"var/lib/dpkg/.wh.status", ""},
             {"var/lib/dpkg/status", "Package: new\nStatus: install ok installed\nVersion: 2\n"}})};
  auto inventory = read_package_inventory(layers);
  ASSERT_TRUE(inventory.has_value());
  EXPECT_EQ(names(*inventory), std::vector<std::string>{"new=2"});
}

TEST_F(LayerFiles, DistrolessStatusDirectory) {
  std::vector<int> layers{
      layer({{"var/lib/dpkg/status.d/base-files",
              "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n"},
             {"var/lib/dpkg/status.d/base-files.md5sums", "abc  etc/issue\n"},
             {"var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\n"}}),
      layer({{"var/lib/dpkg/status.d/.wh.tzdata", ""},
             {"var/lib/dpkg/status.d/netbase", "Package: netbase\nVersion: 6.4\n"}}),
      layer({{"var/lib/dpkg/status.d/h", "Package: hardlinked\nVersion: 1\n"},
             {"var/lib/dpkg/status.d/h2", "var/lib/dpkg/status.d/h", Entry::kHardlink}})};
  auto inventory = read_package_inventory(layers);
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_EQ(names(*inventory),
            (std::vector<std::string>{"base-files=12.4", "hardlinked=1", "netbase=6.4"}));
}

TEST_F(LayerFiles, NoPackageDatabaseIsAnEmptyInventory) {
  std::vector<int> layers{layer({{"bin/busybox", "ELF"}}), layer({}, Compression::kNone)};
  auto inventory = read_package_inventory(layers);
  ASSERT_TRUE(inventory.has_value()) << inventory.error().message;
  EXPECT_TRUE(inventory->packages.empty());
  EXPECT_EQ(inventory->os.key(), "");
}

TEST_F(LayerFiles, RefusesWhatIsNotAnArchive) {
  std::vector<int> layers{raw_file(std::string(2048, 'x'))};
  auto inventory = read_package_inventory(layers);
  ASSERT_FALSE(inventory.has_value());
  EXPECT_NE(inventory.error().message.find("layer 0"), std::string::npos)
      << inventory.error().message;
}

}  // namespace
}  // namespace wharf::registry

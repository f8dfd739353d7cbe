// Unit tests for the vulnerability database, matching and scan reports.
#include "registry/scanner.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "registry/test_layers.hpp"

namespace wharf::registry {
namespace {

namespace bj = boost::json;
using test_layers::LayerEntry;

const TimePoint kNow = from_epoch_seconds(1'700'000'000);

InstalledPackage dpkg(std::string name, std::string version, std::string source = "") {
  return {std::move(name), std::move(version),   std::move(source), {},
          "amd64",         PackageManager::kDpkg};
}

InstalledPackage apk(std::string name, std::string version, std::string origin = "") {
  return {std::move(name), std::move(version),  std::move(origin), {},
          "x86_64",        PackageManager::kApk};
}

VulnerabilityDatabase parse(std::string_view text) {
  auto database = VulnerabilityDatabase::parse(text, kNow);
  EXPECT_TRUE(database.has_value()) << database.error().message;
  return database ? std::move(*database) : VulnerabilityDatabase();
}

TEST(VulnerabilityDatabase, RefusesMalformedEntries) {
  struct Case {
    const char* name;
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"not json", "{", "not JSON"},
      {"not an object", "[]", "JSON object"},
      {"list not a list", R"({"vulnerabilities":{}})", "must be a list"},
      {"no id", R"({"vulnerabilities":[{"package":"a"}]})", "needs an \"id\""},
      {"no package", R"({"vulnerabilities":[{"id":"CVE-1"}]})", "needs a \"package\""},
      {"bad severity", R"({"vulnerabilities":[{"id":"CVE-1","package":"a","severity":"BAD"}]})",
       "severity \"BAD\""},
      {"bad range",
       R"({"vulnerabilities":[{"id":"CVE-1","package":"a","affectedVersions":[{"fixed":"1","lastAffected":"2"}]}]})",
       "not both"},
      {"bad time", R"({"updatedAt":"yesterday"})", "updatedAt"},
  };
  for (const auto& test_case : cases) {
    auto database = VulnerabilityDatabase::parse(test_case.text, kNow);
    ASSERT_FALSE(database.has_value()) << test_case.name;
    EXPECT_NE(database.error().message.find(test_case.error), std::string::npos)
        << test_case.name << ": " << database.error().message;
  }
}

TEST(VulnerabilityDatabase, EmptyDatabasesAreFine) {
  EXPECT_EQ(parse("{}").size(), 0u);
  EXPECT_EQ(parse(R"({"vulnerabilities":[]})").size(), 0u);
  EXPECT_EQ(parse("{}").updated_at(), kNow);
  EXPECT_EQ(parse(R"({"updatedAt":"2024-06-01T12:00:00Z"})").updated_at(),
            from_epoch_seconds(1717243200));
  EXPECT_EQ(parse(R"({"updatedAt":"2024-06-01T12:00:00.250Z"})").updated_at(),
            from_epoch_seconds(1717243200));
  EXPECT_EQ(parse(R"({"updatedAt":1717243200})").updated_at(), from_epoch_seconds(1717243200));
}

TEST(VulnerabilityDatabase, MatchesByPackageOsAndVersion) {
  auto database = parse(R"({"vulnerabilities":[
    {"id":"CVE-A","severity":"HIGH","package":"openssl","os":"debian:12",
     "fixedVersion":"3.0.13-1~deb12u1"},
    {"id":"CVE-B","severity":"LOW","package":"libc6","os":"debian",
     "affectedVersions":[{"introduced":"2.36","fixed":"2.36-9+deb12u4"}]},
    {"id":"CVE-C","severity":"MEDIUM","package":"musl","os":"alpine:3.19",
     "affectedVersions":[{"lastAffected":"1.2.4-r2"}]},
    {"id":"CVE-D","severity":"CRITICAL","package":"zlib","fixedVersion":""},
    {"id":"CVE-E","severity":"LOW","package":"openssl","os":"debian:11","fixedVersion":"9"}
  ]})");
  OsRelease bookworm{"debian", "12", ""};
  OsRelease alpine{"alpine", "3.19.1", ""};
  auto ids = [&](const InstalledPackage& package, const OsRelease& os) {
    std::vector<std::string> found;
    for (const auto* entry : database.affecting(package, os)) found.push_back(entry->id);
    return found;
  };
  using Ids = std::vector<std::string>;
  // By source package, with the source version; ~deb12u2 is older than the fix's 1~deb12u1.
  EXPECT_EQ(ids(dpkg("libssl3", "3.0.11-1~deb12u2+b1", "openssl"), bookworm), Ids{"CVE-A"});
  EXPECT_EQ(ids(dpkg("openssl", "3.0.13-1~deb12u1"), bookworm), Ids{});
  EXPECT_EQ(ids(dpkg("openssl", "3.0.11-1"), OsRelease{"debian", "11", ""}), Ids{"CVE-E"});
  EXPECT_EQ(ids(dpkg("openssl", "3.0.11-1"), OsRelease{"ubuntu", "22.04", ""}), Ids{});
  // Ranges: introduced ≤ v < fixed.
  EXPECT_EQ(ids(dpkg("libc6", "2.36-9+deb12u3"), bookworm), Ids{"CVE-B"});
  EXPECT_EQ(ids(dpkg("libc6", "2.36-9+deb12u4"), bookworm), Ids{});
  EXPECT_EQ(ids(dpkg("libc6", "2.35-1"), bookworm), Ids{});
  // apk ordering and an os version prefix.
  EXPECT_EQ(ids(apk("musl", "1.2.4-r2"), alpine), Ids{"CVE-C"});
  EXPECT_EQ(ids(apk("musl", "1.2.4-r10"), alpine), Ids{});
  EXPECT_EQ(ids(apk("musl", "1.2.4-r2"), OsRelease{"alpine", "3.190", ""}), Ids{});
  // No os and no fix: every version everywhere.
  EXPECT_EQ(ids(apk("zlib", "1.3.1-r0"), alpine), Ids{"CVE-D"});
  EXPECT_EQ(ids(dpkg("zlib", "1:1.2.13"), OsRelease{}), Ids{"CVE-D"});
}

TEST(ScanReport, ShapesFindingsLikeEcr) {
  auto database = parse(R"({"updatedAt":"2024-06-01T12:00:00Z","vulnerabilities":[
    {"id":"CVE-2024-1","severity":"MEDIUM","package":"openssl","description":"weak",
     "uri":"https://example.test/CVE-2024-1","fixedVersion":"3.0.13",
     "cvss2Score":5.0,"cvss2Vector":"AV:N/AC:L/Au:N/C:N/I:N/A:P"},
    {"id":"CVE-2024-2","severity":"CRITICAL","package":"zlib"}
  ]})");
  PackageInventory inventory{OsRelease{"debian", "12", ""},
                             {dpkg("libssl3", "3.0.11", "openssl"), dpkg("openssl", "3.0.11"),
                              dpkg("zlib1g", "1.2", "zlib"), dpkg("bash", "5.2")}};
  ScanReport report = build_scan_report(inventory, &database, kNow);
  EXPECT_EQ(report.status, "COMPLETE");
  EXPECT_NE(report.description.find("4 OS packages (dpkg) on debian:12"), std::string::npos)
      << report.description;
  const auto& findings = report.findings;
  EXPECT_EQ(findings.at("imageScanCompletedAt").as_double(), epoch_seconds(kNow));
  EXPECT_EQ(findings.at("vulnerabilitySourceUpdatedAt").as_double(), 1717243200.0);
  EXPECT_EQ(findings.at("findingSeverityCounts"), (bj::value{{"CRITICAL", 1}, {"MEDIUM", 2}}));
  const auto& list = findings.at("findings").as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].at("name"), "CVE-2024-2");  // most severe first
  EXPECT_EQ(list[1].at("name"), "CVE-2024-1");
  EXPECT_EQ(list[1].at("description"), "weak");
  EXPECT_EQ(list[1].at("uri"), "https://example.test/CVE-2024-1");
  EXPECT_EQ(list[1].at("severity"), "MEDIUM");
  EXPECT_EQ(list[1].at("attributes"),
            (bj::value{{{"key", "package_version"}, {"value", "3.0.11"}},
                       {{"key", "package_name"}, {"value", "libssl3"}},
                       {{"key", "package_manager"}, {"value", "dpkg"}},
                       {{"key", "source_package"}, {"value", "openssl"}},
                       {{"key", "fixed_version"}, {"value", "3.0.13"}},
                       {{"key", "CVSS2_SCORE"}, {"value", "5"}},
                       {{"key", "CVSS2_VECTOR"}, {"value", "AV:N/AC:L/Au:N/C:N/I:N/A:P"}}}));
  EXPECT_EQ(list[2].at("attributes").as_array()[1].at("value"), "openssl");
}

TEST(ScanReport, NoDatabaseMeansNoFindings) {
  PackageInventory inventory{OsRelease{"debian", "12", ""}, {dpkg("bash", "5.2")}};
  ScanReport report = build_scan_report(inventory, nullptr, kNow);
  EXPECT_EQ(report.status, "COMPLETE");
  EXPECT_TRUE(report.findings.at("findings").as_array().empty());
  EXPECT_TRUE(report.findings.at("findingSeverityCounts").as_object().empty());
  EXPECT_FALSE(report.findings.contains("vulnerabilitySourceUpdatedAt"));
  EXPECT_NE(report.description.find("no vulnerability database"), std::string::npos);
}

TEST(ScanReport, NoPackagesIsAnUnsupportedImage) {
  auto database = parse(R"({"vulnerabilities":[{"id":"CVE-1","package":"busybox"}]})");
  ScanReport report = build_scan_report(PackageInventory{}, &database, kNow);
  EXPECT_EQ(report.status, "UNSUPPORTED_IMAGE");
  EXPECT_TRUE(report.findings.at("findings").as_array().empty());
}

class ScannerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/wharf-scanner-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path write(const std::string& name, const std::string& bytes) {
    std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  int open_layer(const std::vector<LayerEntry>& entries) {
    auto path = write("layer" + std::to_string(fds_.size()), test_layers::layer_tar(entries));
    fds_.push_back(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return fds_.back();
  }

  std::filesystem::path dir_;
  std::vector<int> fds_;
};

TEST_F(ScannerFiles, ScansLayersAgainstTheDatabaseFile) {
  auto database_path = write("db.json", R"({"vulnerabilities":[
      {"id":"CVE-2099-0001","severity":"HIGH","package":"wharf-demo","os":"debian:12",
       "fixedVersion":"1.1"}]})");
  ImageScanner scanner(database_path);
  ASSERT_TRUE(scanner.check_database().has_value());
  auto status_text =
      "Package: wharf-demo\nStatus: install ok installed\nVersion: 1.0-1\n\n"
      "Package: other\nStatus: install ok installed\nVersion: 2\n";
  std::vector<int> layers{open_layer({{"etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"},
                                      {"var/lib/dpkg/status", status_text}})};
  auto report = scanner.scan(layers, kNow);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->status, "COMPLETE");
  ASSERT_EQ(report->findings.at("findings").as_array().size(), 1u);
  EXPECT_EQ(report->findings.at("findings").as_array()[0].at("name"), "CVE-2099-0001");

  // The operator empties the database: the next scan finds nothing.
  write("db.json", R"({"vulnerabilities":[]})");
  std::filesystem::last_write_time(
      database_path, std::filesystem::file_time_type::clock::now() + std::chrono::seconds(5));
  std::vector<int> again{open_layer({{"etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"},
                                     {"var/lib/dpkg/status", status_text}})};
  report = scanner.scan(again, kNow);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_TRUE(report->findings.at("findings").as_array().empty());
}

TEST_F(ScannerFiles, ABrokenDatabaseFailsTheScan) {
  ImageScanner missing(dir_ / "absent.json");
  EXPECT_FALSE(missing.check_database().has_value());
  ImageScanner broken(write("broken.json", "{nope"));
  auto error = broken.check_database();
  ASSERT_FALSE(error.has_value());
  EXPECT_NE(error.error().message.find("broken.json"), std::string::npos);
  ImageScanner none(std::nullopt);
  EXPECT_TRUE(none.check_database().has_value());
}

}  // namespace
}  // namespace wharf::registry

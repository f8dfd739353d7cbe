// Image building: reproducible digests, the layer's tar read back with libarchive, the config
// and manifest fields, tar input, and runtime-config validation.
#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <fstream>
#include <sstream>

#include "oci/image_builder.hpp"
#include "oci/layout.hpp"

namespace wharf::oci {
namespace {

namespace fs = std::filesystem;

const TimePoint kFixedTime = TimePoint(std::chrono::seconds(1704164645));  // 2024-01-02T03:04:05Z
const std::string kLongName(120, 'n');  // past ustar's 100 characters: needs a pax header

std::string text(const boost::json::value& value) {
  return value.is_string() ? std::string(value.as_string()) : boost::json::serialize(value);
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, std::string_view content, mode_t mode) {
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

// A small root filesystem with every kind of entry the builder records.
void make_tree(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::create_directories(root / "etc");
  fs::create_directories(root / "tmp");
  fs::create_directories(root / "empty");
  write_file(root / "bin/busybox", "#!busybox\n", 0755);
  ASSERT_EQ(::link((root / "bin/busybox").c_str(), (root / "bin/ls").c_str()), 0);
  fs::create_symlink("busybox", root / "bin/sh");
  write_file(root / "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0640);
  ASSERT_EQ(::lchown((root / "etc/passwd").c_str(), 1000, 1001), 0);
  ASSERT_EQ(::chmod((root / "tmp").c_str(), 01777), 0);
  ASSERT_EQ(::mkfifo((root / "etc/fifo").c_str(), 0600), 0);
  write_file(root / "etc" / kLongName, std::string(70000, 'x'), 0600);
}

struct TarEntry {
  std::string path;
  mode_t type = 0;
  mode_t perm = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 0;
  std::string symlink;
  std::string hardlink;
  std::string content;
};

// The entries of a (compressed) tar, read back with libarchive.
std::vector<TarEntry> read_tar(const fs::path& path) {
  std::vector<TarEntry> entries;
  archive* reader = archive_read_new();
  archive_read_support_filter_all(reader);
  archive_read_support_format_tar(reader);
  EXPECT_EQ(archive_read_open_filename(reader, path.c_str(), 10240), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(reader, &entry) == ARCHIVE_OK) {
    TarEntry read;
    read.path = archive_entry_pathname(entry);
    read.type = archive_entry_filetype(entry);
    read.perm = archive_entry_perm(entry);
    read.uid = archive_entry_uid(entry);
    read.gid = archive_entry_gid(entry);
    read.mtime = archive_entry_mtime(entry);
    if (archive_entry_symlink(entry)) read.symlink = archive_entry_symlink(entry);
    if (archive_entry_hardlink(entry)) read.hardlink = archive_entry_hardlink(entry);
    char buffer[8192];
    for (la_ssize_t count; (count = archive_read_data(reader, buffer, sizeof buffer)) > 0;) {
      read.content.append(buffer, static_cast<std::size_t>(count));
    }
    entries.push_back(std::move(read));
  }
  archive_read_free(reader);
  return entries;
}

// The layer decompressed, to hash it as the diff id.
std::string gunzip(const fs::path& path) {
  archive* reader = archive_read_new();
  archive_read_support_filter_gzip(reader);
  archive_read_support_format_raw(reader);
  EXPECT_EQ(archive_read_open_filename(reader, path.c_str(), 10240), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  std::string out;
  if (archive_read_next_header(reader, &entry) == ARCHIVE_OK) {
    char buffer[8192];
    for (la_ssize_t count; (count = archive_read_data(reader, buffer, sizeof buffer)) > 0;) {
      out.append(buffer, static_cast<std::size_t>(count));
    }
  }
  archive_read_free(reader);
  return out;
}

ImageBuildOptions fixed_options() {
  ImageBuildOptions options;
  options.created = kFixedTime;
  options.mtime = kFixedTime;
  options.config.entrypoint = {"/bin/sh", "-c"};
  options.config.cmd = {"echo hello"};
  options.config.env = {"PATH=/bin", "GREETING=a=b"};
  options.config.working_dir = "/tmp";
  options.config.exposed_ports = {"80", "53/udp", "80/tcp"};
  options.config.labels = {{"team", "wharf"}};
  return options;
}

class ImageBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("wharf-builder-test-");
    ASSERT_TRUE(dir.has_value());
    dir_ = std::move(*dir);
    make_tree(dir_.path() / "rootfs");
  }

  fs::path rootfs() const { return dir_.path() / "rootfs"; }

  TempDir dir_;
};

TEST_F(ImageBuilderTest, SameTreeGivesSameDigests) {
  auto first = build_image(rootfs(), fixed_options());
  ASSERT_TRUE(first.has_value()) << first.error().message;
  // The same content elsewhere: other inodes, ctimes and atimes, fresh mtimes.
  make_tree(dir_.path() / "copy");
  auto second = build_image(dir_.path() / "copy", fixed_options());
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(first->diff_id, second->diff_id);
  EXPECT_EQ(first->layer.digest, second->layer.digest);
  EXPECT_EQ(first->config.digest, second->config.digest);
  EXPECT_EQ(first->manifest_digest, second->manifest_digest);
  EXPECT_EQ(first->manifest, second->manifest);

  // One byte more changes everything.
  write_file(dir_.path() / "copy/etc/passwd", "root:x:0:0::/root:/bin/sh\n\n", 0640);
  ASSERT_EQ(::lchown((dir_.path() / "copy/etc/passwd").c_str(), 1000, 1001), 0);
  auto third = build_image(dir_.path() / "copy", fixed_options());
  ASSERT_TRUE(third.has_value());
  EXPECT_NE(first->diff_id, third->diff_id);
  EXPECT_NE(first->manifest_digest, third->manifest_digest);
}

TEST_F(ImageBuilderTest, LayerHoldsTheTreeSortedWithItsMetadata) {
  auto image = build_image(rootfs(), fixed_options());
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(digest_of(read_file(image->layer.path)), image->layer.digest);
  EXPECT_EQ(fs::file_size(image->layer.path), image->layer.size);
  EXPECT_EQ(digest_of(gunzip(image->layer.path)), image->diff_id);

  auto entries = read_tar(image->layer.path);
  std::vector<std::string> paths;
  for (const auto& entry : entries) paths.push_back(entry.path);
  std::vector<std::string> expected = {"bin/",       "bin/busybox", "bin/ls",   "bin/sh",
                                       "empty/",     "etc/",        "etc/fifo", "etc/" + kLongName,
                                       "etc/passwd", "tmp/"};
  // libarchive writes directories with a trailing slash; accept either spelling.
  for (auto& path : paths) {
    if (!path.ends_with('/') && fs::is_directory(rootfs() / path)) path += '/';
  }
  EXPECT_EQ(paths, expected);

  std::map<std::string, TarEntry> by_path;
  for (auto& entry : entries) {
    std::string path = entry.path;
    if (path.ends_with('/')) path.pop_back();
    by_path[path] = entry;
  }
  EXPECT_EQ(by_path["bin/busybox"].type, AE_IFREG);
  EXPECT_EQ(by_path["bin/busybox"].perm, 0755);
  EXPECT_EQ(by_path["bin/busybox"].content, "#!busybox\n");
  EXPECT_EQ(by_path["bin/ls"].hardlink, "bin/busybox");
  EXPECT_EQ(by_path["bin/sh"].type, AE_IFLNK);
  EXPECT_EQ(by_path["bin/sh"].symlink, "busybox");
  EXPECT_EQ(by_path["etc/passwd"].perm, 0640);
  EXPECT_EQ(by_path["etc/passwd"].uid, 1000);
  EXPECT_EQ(by_path["etc/passwd"].gid, 1001);
  EXPECT_EQ(by_path["etc/fifo"].type, AE_IFIFO);
  EXPECT_EQ(by_path["tmp"].type, AE_IFDIR);
  EXPECT_EQ(by_path["tmp"].perm, 01777);
  EXPECT_EQ(by_path["etc/" + kLongName].content.size(), 70000u);
  for (const auto& entry : entries) EXPECT_EQ(entry.mtime, 1704164645) << entry.path;
}

TEST_F(ImageBuilderTest, KeepsFileTimesUnlessFixed) {
  struct timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (rootfs() / "etc/passwd").c_str(), times, AT_SYMLINK_NOFOLLOW),
            0);
  ImageBuildOptions options;
  auto image = build_image(rootfs(), options);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  for (const auto& entry : read_tar(image->layer.path)) {
    if (entry.path == "etc/passwd") {
      EXPECT_EQ(entry.mtime, 1600000000);
    }
  }
}

TEST_F(ImageBuilderTest, ConfigAndManifestDescribeTheLayer) {
  auto image = build_image(rootfs(), fixed_options());
  ASSERT_TRUE(image.has_value()) << image.error().message;
  std::string config_bytes = read_file(image->config.path);
  EXPECT_EQ(digest_of(config_bytes), image->config.digest);
  auto config = boost::json::parse(config_bytes).as_object();
  EXPECT_EQ(config["architecture"], "amd64");
  EXPECT_EQ(config["os"], "linux");
  EXPECT_EQ(config["created"], "2024-01-02T03:04:05Z");
  auto runtime = config["config"].as_object();
  EXPECT_EQ(runtime["Entrypoint"], (boost::json::array{"/bin/sh", "-c"}));
  EXPECT_EQ(runtime["Cmd"], (boost::json::array{"echo hello"}));
  EXPECT_EQ(runtime["Env"], (boost::json::array{"PATH=/bin", "GREETING=a=b"}));
  EXPECT_EQ(runtime["WorkingDir"], "/tmp");
  EXPECT_EQ(runtime["ExposedPorts"], (boost::json::object{{"80/tcp", boost::json::object{}},
                                                          {"53/udp", boost::json::object{}}}));
  EXPECT_EQ(runtime["Labels"], (boost::json::object{{"team", "wharf"}}));
  auto rootfs_json = config["rootfs"].as_object();
  EXPECT_EQ(rootfs_json["type"], "layers");
  EXPECT_EQ(rootfs_json["diff_ids"], (boost::json::array{image->diff_id.str()}));
  auto history = config["history"].as_array();
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].as_object()["created_by"], "wharf image import");
  EXPECT_EQ(history[0].as_object()["created"], "2024-01-02T03:04:05Z");

  auto manifest = parse_manifest(image->manifest, kOciManifest);
  ASSERT_TRUE(manifest.has_value()) << manifest.error().message;
  EXPECT_EQ(manifest->media_type, kOciManifest);
  EXPECT_EQ(manifest->config->media_type, kOciImageConfig);
  EXPECT_EQ(manifest->config->digest, image->config.digest);
  EXPECT_EQ(manifest->config->size, static_cast<int64_t>(config_bytes.size()));
  ASSERT_EQ(manifest->layers.size(), 1u);
  EXPECT_EQ(manifest->layers[0].media_type, kOciLayerGzip);
  EXPECT_EQ(manifest->layers[0].digest, image->layer.digest);
  EXPECT_EQ(manifest->layers[0].size, static_cast<int64_t>(image->layer.size));
  EXPECT_EQ(digest_of(image->manifest), image->manifest_digest);
}

TEST_F(ImageBuilderTest, OutputIsAnOciLayoutRemovedWithTheImage) {
  fs::path layout;
  {
    auto image = build_image(rootfs(), fixed_options());
    ASSERT_TRUE(image.has_value()) << image.error().message;
    layout = image->dir.path();
    EXPECT_TRUE(fs::exists(layout / "oci-layout"));
    EXPECT_EQ(read_file(layout_blob_path(layout, image->manifest_digest)), image->manifest);
    auto index = boost::json::parse(read_file(layout / "index.json")).as_object();
    auto entry = index["manifests"].as_array()[0].as_object();
    EXPECT_EQ(text(entry["digest"]), image->manifest_digest.str());
    EXPECT_EQ(text(entry["mediaType"]), kOciManifest);
    std::size_t files = 0;
    for (const auto& file : fs::recursive_directory_iterator(layout / "blobs")) {
      files += file.is_regular_file() ? 1 : 0;
    }
    EXPECT_EQ(files, 3u);  // layer, config, manifest; no leftovers
  }
  EXPECT_FALSE(fs::exists(layout));
}

// Writes a tar with the given (path, type, content) entries.
void write_tar(const fs::path& path,
               const std::vector<std::tuple<std::string, mode_t, std::string>>& entries) {
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  archive_write_add_filter_gzip(writer);
  ASSERT_EQ(archive_write_open_filename(writer, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, type, content] : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_filetype(entry, type);
    archive_entry_set_perm(entry, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(entry, 1500000000, 0);
    if (type == AE_IFREG) archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
    if (type == AE_IFLNK) archive_entry_set_symlink(entry, content.c_str());
    archive_write_header(writer, entry);
    if (type == AE_IFREG) archive_write_data(writer, content.data(), content.size());
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
}

TEST_F(ImageBuilderTest, ImportsATarWithPathsMadeRelative) {
  fs::path tar = dir_.path() / "rootfs.tar.gz";
  write_tar(tar, {{"./", AE_IFDIR, ""},
                  {"./bin/", AE_IFDIR, ""},
                  {"./bin/busybox", AE_IFREG, "#!busybox\n"},
                  {"/bin/sh", AE_IFLNK, "busybox"}});
  ImageBuildOptions options;
  auto image = build_image(tar, options);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  auto entries = read_tar(image->layer.path);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_TRUE(entries[0].path == "bin" || entries[0].path == "bin/") << entries[0].path;
  EXPECT_EQ(entries[1].path, "bin/busybox");
  EXPECT_EQ(entries[1].content, "#!busybox\n");
  EXPECT_EQ(entries[1].mtime, 1500000000);
  EXPECT_EQ(entries[2].path, "bin/sh");
  EXPECT_EQ(entries[2].symlink, "busybox");
}

TEST_F(ImageBuilderTest, RefusesTarsThatEscapeAndMissingRoots) {
  fs::path tar = dir_.path() / "evil.tar.gz";
  write_tar(tar, {{"../etc/passwd", AE_IFREG, "x"}});
  auto image = build_image(tar, ImageBuildOptions{});
  ASSERT_FALSE(image.has_value());
  EXPECT_NE(image.error().message.find("'..'"), std::string::npos) << image.error().message;

  auto missing = build_image(dir_.path() / "nope", ImageBuildOptions{});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidParameter);

  write_file(dir_.path() / "garbage", "not a tar at all", 0644);
  EXPECT_FALSE(build_image(dir_.path() / "garbage", ImageBuildOptions{}).has_value());
}

TEST(RuntimeConfig, NormalisesPortsAndRefusesBadValues) {
  RuntimeConfig config;
  config.exposed_ports = {"80", "443/TCP", "53/udp", "80/tcp", "9000/sctp"};
  auto normalized = normalize_runtime_config(config);
  ASSERT_TRUE(normalized.has_value()) << normalized.error().message;
  EXPECT_EQ(normalized->exposed_ports,
            (std::vector<std::string>{"80/tcp", "443/tcp", "53/udp", "9000/sctp"}));

  std::vector<RuntimeConfig> bad(8);
  bad[0].exposed_ports = {"0"};
  bad[1].exposed_ports = {"65536"};
  bad[2].exposed_ports = {"http"};
  bad[3].exposed_ports = {"80/icmp"};
  bad[4].exposed_ports = {""};
  bad[5].env = {"NOVALUE"};
  bad[6].env = {"=value"};
  bad[7].working_dir = "relative";
  for (const auto& config_case : bad) {
    auto result = normalize_runtime_config(config_case);
    EXPECT_FALSE(result.has_value());
    if (!result) {
      EXPECT_EQ(result.error().code, ErrorCode::kInvalidParameter);
    }
  }
}

TEST(RuntimeConfig, ParsesCommandWords) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(parse_command_words(R"(["/bin/sh", "-c", "echo a  b"])"),
            (Words{"/bin/sh", "-c", "echo a  b"}));
  EXPECT_EQ(parse_command_words("  /bin/httpd -f   -p 80 "),
            (Words{"/bin/httpd", "-f", "-p", "80"}));
  EXPECT_EQ(parse_command_words(""), Words{});
  EXPECT_EQ(parse_command_words("[]"), Words{});
  EXPECT_FALSE(parse_command_words(R"(["a", 1])").has_value());
  EXPECT_FALSE(parse_command_words("[not json").has_value());
}

}  // namespace
}  // namespace wharf::oci

// Layer unpacking: compressions, metadata, the diff_id, malicious tars, whiteouts, concurrency.
#include "agent/layer_unpack.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <atomic>
#include <thread>

#include "agent/test_layers.hpp"

namespace wharf::agent {
namespace {

namespace fs = std::filesystem;
using testkit::DataDirTest;
using testkit::kEntryMtime;
using testkit::make_tar;
using testkit::TarCompression;
using testkit::TarEntry;
using namespace std::string_literals;

struct stat lstat_of(const fs::path& path) {
  struct stat status {};
  EXPECT_EQ(lstat(path.c_str(), &status), 0) << path;
  return status;
}

std::string xattr_of(const fs::path& path, const char* name) {
  char value[64];
  ssize_t size = lgetxattr(path.c_str(), name, value, sizeof value);
  return size < 0 ? "" : std::string(value, static_cast<std::size_t>(size));
}

TEST(DetectLayerCompression, ByMagicBytes) {
  EXPECT_EQ(detect_layer_compression("\x1f\x8b\x08\x00"s), LayerCompression::kGzip);
  EXPECT_EQ(detect_layer_compression("\x28\xb5\x2f\xfd\x00"s), LayerCompression::kZstd);
  EXPECT_EQ(detect_layer_compression("etc/\0\0\0\0"s), LayerCompression::kNone);
  EXPECT_EQ(detect_layer_compression("BZhello.txt\0"s), LayerCompression::kNone);  // a file name
  for (std::string refused : {"\xfd"
                              "7zXZ\0\0"s,
                              "BZh91AY&SY\0"s, "\x04\x22\x4d\x18\0"s, ""s}) {
    auto detected = detect_layer_compression(refused);
    ASSERT_FALSE(detected.has_value());
    EXPECT_EQ(detected.error().code, ErrorCode::kInvalidLayer);
  }
}

LayerCompression detected_as(TarCompression compression) {
  if (compression == TarCompression::kGzip) return LayerCompression::kGzip;
  if (compression == TarCompression::kZstd) return LayerCompression::kZstd;
  return LayerCompression::kNone;
}

class UnpackCompressed : public DataDirTest,
                         public ::testing::WithParamInterface<TarCompression> {};

TEST_P(UnpackCompressed, KeepsContentAndMetadata) {
  std::string tar = make_tar({
      {.path = "./", .type = AE_IFDIR, .perm = 0755, .mtime = kEntryMtime + 1},
      {.path = "bin/", .type = AE_IFDIR, .perm = 0750, .gid = 7, .mtime = kEntryMtime + 2},
      {.path = "bin/tool", .perm = 04755, .content = "#!/bin/true\n"},
      {.path = "bin/tool2", .hardlink = "bin/tool"},
      {.path = "bin/sh", .type = AE_IFLNK, .perm = 0777, .symlink = "tool", .uid = 3},
      {.path = "etc/conf",
       .perm = 0640,
       .content = "x=1\n",
       .uid = 1000,
       .gid = 1001,
       .xattrs = {{"user.note", "kept"},
                  {"trusted.overlay.redirect", "/etc"},
                  {"user.overlay.opaque", "y"}}},
      {.path = "run/fifo", .type = AE_IFIFO, .perm = 0620},
  });
  fs::path blob = write_blob("layer", testkit::compress(tar, GetParam()));
  auto unpacked = unpack_layer(layout(), blob, std::nullopt);
  ASSERT_TRUE(unpacked.has_value()) << unpacked.error().message;

  EXPECT_EQ(unpacked->diff_id, oci::digest_of(tar));
  EXPECT_TRUE(unpacked->unpacked);
  EXPECT_EQ(unpacked->compression, detected_as(GetParam()));
  fs::path dir = unpacked->dir;
  EXPECT_EQ(dir, layout().layer_dir(unpacked->diff_id));
  EXPECT_EQ(testkit::read_file(dir / "bin/tool"), "#!/bin/true\n");
  EXPECT_EQ(lstat_of(dir / "bin/tool").st_mode, S_IFREG | 04755);
  EXPECT_EQ(lstat_of(dir / "bin/tool").st_mtim.tv_sec, kEntryMtime);
  EXPECT_EQ(lstat_of(dir / "bin/tool2").st_ino, lstat_of(dir / "bin/tool").st_ino);
  EXPECT_EQ(fs::read_symlink(dir / "bin/sh"), "tool");
  EXPECT_EQ(lstat_of(dir / "bin/sh").st_uid, 3u);
  EXPECT_EQ(lstat_of(dir / "bin").st_mode, S_IFDIR | 0750);
  EXPECT_EQ(lstat_of(dir / "bin").st_gid, 7u);
  EXPECT_EQ(lstat_of(dir / "bin").st_mtim.tv_sec, kEntryMtime + 2);  // after its files
  EXPECT_EQ(lstat_of(dir).st_mode, S_IFDIR | 0755);
  EXPECT_EQ(lstat_of(dir).st_mtim.tv_sec, kEntryMtime + 1);
  EXPECT_EQ(lstat_of(dir / "etc/conf").st_uid, 1000u);
  EXPECT_EQ(lstat_of(dir / "etc/conf").st_gid, 1001u);
  EXPECT_EQ(lstat_of(dir / "etc/conf").st_mode, S_IFREG | 0640);
  EXPECT_EQ(xattr_of(dir / "etc/conf", "user.note"), "kept");
  EXPECT_EQ(xattr_of(dir / "etc/conf", "trusted.overlay.redirect"), "");
  EXPECT_EQ(xattr_of(dir / "etc/conf", "user.overlay.opaque"), "");
  EXPECT_EQ(lstat_of(dir / "etc").st_mode, S_IFDIR | 0755);  // created for etc/conf
  EXPECT_EQ(lstat_of(dir / "run/fifo").st_mode, S_IFIFO | 0620);
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
}

INSTANTIATE_TEST_SUITE_P(Compressions, UnpackCompressed,
                         ::testing::Values(TarCompression::kNone, TarCompression::kGzip,
                                           TarCompression::kZstd));

TEST_F(DataDirTest, CachedLayerIsNotUnpackedTwice) {
  std::string tar = make_tar({{.path = "a", .content = "a"}});
  fs::path blob = write_blob("layer", tar);
  ASSERT_TRUE(unpack_layer(layout(), blob, std::nullopt).has_value());

  auto again = unpack_layer(layout(), blob, std::nullopt);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_FALSE(again->unpacked);
  // With the diff_id known, the blob is not even read.
  auto known = unpack_layer(layout(), root_ / "no-such-blob", oci::digest_of(tar));
  ASSERT_TRUE(known.has_value()) << known.error().message;
  EXPECT_FALSE(known->unpacked);
  EXPECT_EQ(list(layout().layers_dir() / "sha256").size(), 1u);
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
}

TEST_F(DataDirTest, DiffIdIsVerified) {
  std::string tar = make_tar({{.path = "a", .content = "a"}});
  fs::path blob = write_blob("layer", testkit::compress(tar, TarCompression::kGzip));
  oci::Digest wrong = oci::digest_of("something else");
  auto unpacked = unpack_layer(layout(), blob, wrong);
  ASSERT_FALSE(unpacked.has_value());
  EXPECT_EQ(unpacked.error().code, ErrorCode::kImageDigestDoesNotMatch);
  EXPECT_NE(unpacked.error().message.find(oci::digest_of(tar).str()), std::string::npos);
  EXPECT_NE(unpacked.error().message.find(wrong.str()), std::string::npos);
  EXPECT_FALSE(layer_unpacked(layout(), wrong));
  EXPECT_FALSE(layer_unpacked(layout(), oci::digest_of(tar)));
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());

  auto sha512 = unpack_layer(layout(), blob, oci::digest_of(tar, "sha512"));
  ASSERT_TRUE(sha512.has_value()) << sha512.error().message;
  EXPECT_EQ(sha512->dir, layout().layers_dir() / "sha512" / oci::digest_of(tar, "sha512").hex);
}

TEST_F(DataDirTest, EmptyLayerUnpacks) {
  std::string tar = make_tar({});
  auto unpacked = unpack_layer(layout(), write_blob("empty", tar), oci::digest_of(tar));
  ASSERT_TRUE(unpacked.has_value()) << unpacked.error().message;
  EXPECT_TRUE(list(unpacked->dir).empty());
}

TEST_F(DataDirTest, BrokenBlobsAreRefused) {
  std::string gzip = testkit::compress(
      make_tar({{.path = "a", .content = std::string(100000, 'x')}}), TarCompression::kGzip);
  for (const auto& [name, bytes, expected] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"truncated-gzip", gzip.substr(0, gzip.size() / 2), "gzip"},
           {"xz", testkit::compress(make_tar({{.path = "a"}}), TarCompression::kXz), "xz"},
           {"not-a-tar", std::string(2000, 'z'), "tar"},
           {"empty", "", "empty"},
       }) {
    auto unpacked = unpack_layer(layout(), write_blob(name, bytes), std::nullopt);
    ASSERT_FALSE(unpacked.has_value()) << name;
    EXPECT_EQ(unpacked.error().code, ErrorCode::kInvalidLayer) << name;
    EXPECT_NE(unpacked.error().message.find(expected), std::string::npos)
        << name << ": " << unpacked.error().message;
  }
  EXPECT_TRUE(list(layout().layers_dir() / "sha256").empty());
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
}

struct Refusal {
  std::string name;
  std::vector<TarEntry> entries;
  std::string entry;   // named in the error
  std::string reason;  // also in the error
};

class RefusedLayer : public DataDirTest, public ::testing::WithParamInterface<Refusal> {};

TEST_P(RefusedLayer, IsRefusedNamingTheEntryAndLeavesNothing) {
  const Refusal& refusal = GetParam();
  auto unpacked =
      unpack_layer(layout(), write_blob("layer", make_tar(refusal.entries)), std::nullopt);
  ASSERT_FALSE(unpacked.has_value());
  EXPECT_EQ(unpacked.error().code, ErrorCode::kInvalidLayer);
  const std::string& message = unpacked.error().message;
  EXPECT_NE(message.find("layer entry '" + refusal.entry), std::string::npos) << message;
  EXPECT_NE(message.find(refusal.reason), std::string::npos) << message;
  EXPECT_TRUE(list(layout().layers_dir() / "sha256").empty());
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
  EXPECT_FALSE(fs::exists(layout().layers_dir() / "escape"));
  EXPECT_FALSE(fs::exists(layout().layers_dir() / "escaped"));
}

INSTANTIATE_TEST_SUITE_P(
    Malicious, RefusedLayer,
    ::testing::Values(
        Refusal{"DotDot", {{.path = "../escape"}}, "../escape", "'..' component"},
        Refusal{"DotDotInside", {{.path = "a/../../escape"}}, "a/../../escape", "'..'"},
        Refusal{"FileThroughSymlinkToParent",
                {{.path = "up", .type = AE_IFLNK, .symlink = ".."},
                 {.path = "up/escaped", .content = "pwned"}},
                "up/escaped",
                "'up' on its path is a symbolic link"},
        Refusal{"DirThroughSymlinkToParent",
                {{.path = "up", .type = AE_IFLNK, .symlink = "../.."},
                 {.path = "up/escape/", .type = AE_IFDIR}},
                "up/escape",
                "symbolic link"},
        Refusal{"HardlinkToHostPasswd",
                {{.path = "passwd", .hardlink = "/etc/passwd"}},
                "passwd",
                "hard link target '/etc/passwd': 'etc' is not in the layer"},
        Refusal{"HardlinkToMissingFile",
                {{.path = "etc/", .type = AE_IFDIR}, {.path = "passwd", .hardlink = "/etc/passwd"}},
                "passwd",
                "hard link target '/etc/passwd' is not in the layer"},
        Refusal{"HardlinkUpwards", {{.path = "x", .hardlink = "../../x"}}, "x", "'..' component"},
        Refusal{"HardlinkThroughSymlink",
                {{.path = "link", .type = AE_IFLNK, .symlink = "/"},
                 {.path = "x", .hardlink = "link/etc/passwd"}},
                "x",
                "symbolic link"},
        Refusal{"HardlinkToDirectory",
                {{.path = "d/", .type = AE_IFDIR}, {.path = "x", .hardlink = "d"}},
                "x",
                "is a directory"},
        Refusal{"CharDevice",
                {{.path = "dev/null", .type = AE_IFCHR, .rdev_major = 1, .rdev_minor = 3}},
                "dev/null",
                "character devices are not allowed"},
        Refusal{"BlockDevice",
                {{.path = "dev/sda", .type = AE_IFBLK, .rdev_major = 8}},
                "dev/sda",
                "block devices are not allowed"},
        Refusal{"WhiteoutAsDevice",
                {{.path = "gone", .type = AE_IFCHR}},
                "gone",
                "character devices are not allowed"},
        Refusal{"HugePath",
                {{.path = std::string(5000, 'p')}},
                std::string(120, 'p') + "…' (5000 bytes)",
                "longer than 4095 bytes"},
        Refusal{"HugeComponent",
                {{.path = "a/" + std::string(300, 'c')}},
                "a/ccc",
                "component longer than 255"},
        Refusal{"FileAsParent",
                {{.path = "a", .content = "file"}, {.path = "a/b"}},
                "a/b",
                "'a' on its path is not a directory"},
        Refusal{"WhiteoutOfNothing", {{.path = "d/.wh."}}, "d/.wh.", "whiteout names no file"},
        Refusal{"RootAsFile", {{.path = "."}}, ".", "not a directory"}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return info.param.name; });

TEST_F(DataDirTest, SparseFilesKeepTheirSize) {
  std::string tar;
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  ASSERT_EQ(archive_write_open(writer, &tar, nullptr, testkit::append_to_string, nullptr),
            ARCHIVE_OK);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, "sparse");
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_size(entry, 1 << 20);
  archive_entry_sparse_add_entry(entry, 4096, 4);  // data at 4 KiB, holes around it
  ASSERT_EQ(archive_write_header(writer, entry), ARCHIVE_OK) << archive_error_string(writer);
  std::string logical(1 << 20, '\0');  // the writer keeps only the mapped regions
  logical.replace(4096, 4, "data");
  ASSERT_EQ(archive_write_data(writer, logical.data(), logical.size()),
            static_cast<la_ssize_t>(logical.size()));
  archive_entry_free(entry);
  ASSERT_EQ(archive_write_close(writer), ARCHIVE_OK);
  archive_write_free(writer);

  auto unpacked = unpack_layer(layout(), write_blob("sparse", tar), std::nullopt);
  ASSERT_TRUE(unpacked.has_value()) << unpacked.error().message;
  std::string content = testkit::read_file(unpacked->dir / "sparse");
  ASSERT_EQ(content.size(), 1u << 20);
  EXPECT_EQ(content.substr(4096, 4), "data");
  EXPECT_EQ(content.find_first_not_of('\0', 4100), std::string::npos);
}

TEST_F(DataDirTest, AbsolutePathsLandInsideTheLayerAsWithDocker) {
  auto diff_id = unpack("abs", {{.path = "/abs/path", .content = "inside"},
                                {.path = "//double//slash/./file", .content = "clean"}});
  fs::path dir = layout().layer_dir(diff_id);
  EXPECT_EQ(testkit::read_file(dir / "abs/path"), "inside");
  EXPECT_EQ(testkit::read_file(dir / "double/slash/file"), "clean");
  EXPECT_FALSE(fs::exists("/abs/path"));
}

TEST_F(DataDirTest, SymlinkToRootIsNeverFollowed) {
  fs::path victim = root_ / "victim";
  std::ofstream(victim) << "untouched";
  std::string through_link = "link" + victim.string();  // "link/tmp/wharf-agent-test-…/victim"
  auto unpacked = unpack_layer(
      layout(),
      write_blob("to-victim", make_tar({{.path = "link", .type = AE_IFLNK, .symlink = "/"},
                                        {.path = through_link, .content = "pwned"}})),
      std::nullopt);
  ASSERT_FALSE(unpacked.has_value());
  EXPECT_NE(unpacked.error().message.find("'link' on its path is a symbolic link"),
            std::string::npos)
      << unpacked.error().message;
  ASSERT_EQ(testkit::read_file(victim), "untouched");

  // The same with the host's /etc/passwd; only reached once the test above proved it safe.
  std::string passwd = testkit::read_file("/etc/passwd");
  unpacked = unpack_layer(
      layout(),
      write_blob("to-passwd",
                 make_tar({{.path = "link", .type = AE_IFLNK, .symlink = "/"},
                           {.path = "link/etc/passwd", .content = "root::0:0::/:/bin/sh\n"}})),
      std::nullopt);
  ASSERT_FALSE(unpacked.has_value());
  EXPECT_EQ(unpacked.error().code, ErrorCode::kInvalidLayer);
  EXPECT_EQ(testkit::read_file("/etc/passwd"), passwd);
}

TEST_F(DataDirTest, HardlinkTargetsResolveInsideTheLayer) {
  struct stat host_passwd = lstat_of("/etc/passwd");
  auto diff_id = unpack("links", {{.path = "etc/passwd", .content = "layer's own\n"},
                                  {.path = "etc/passwd-link", .hardlink = "/etc/passwd"}});
  fs::path dir = layout().layer_dir(diff_id);
  struct stat linked = lstat_of(dir / "etc/passwd-link");
  EXPECT_EQ(linked.st_ino, lstat_of(dir / "etc/passwd").st_ino);
  EXPECT_NE(linked.st_ino, host_passwd.st_ino);
  EXPECT_EQ(lstat_of("/etc/passwd").st_nlink, host_passwd.st_nlink);
}

TEST_F(DataDirTest, LaterEntriesReplaceEarlierOnes) {
  auto diff_id = unpack("replace", {{.path = "a", .content = "file"},
                                    {.path = "a/", .type = AE_IFDIR},
                                    {.path = "a/b", .content = "in dir"},
                                    {.path = "d/f", .content = "doomed"},
                                    {.path = "d", .type = AE_IFLNK, .symlink = "a"},
                                    {.path = "x", .type = AE_IFLNK, .symlink = "/etc/hostname"},
                                    {.path = "x", .content = "not through the link"},
                                    {.path = "keep/", .type = AE_IFDIR, .perm = 0700},
                                    {.path = "keep/f", .content = "f"},
                                    {.path = "keep/", .type = AE_IFDIR, .perm = 0711}});
  fs::path dir = layout().layer_dir(diff_id);
  EXPECT_EQ(testkit::read_file(dir / "a/b"), "in dir");
  EXPECT_EQ(fs::read_symlink(dir / "d"), "a");
  EXPECT_TRUE(S_ISREG(lstat_of(dir / "x").st_mode));
  EXPECT_EQ(testkit::read_file(dir / "x"), "not through the link");
  EXPECT_EQ(lstat_of(dir / "keep").st_mode, S_IFDIR | 0711);
  EXPECT_EQ(testkit::read_file(dir / "keep/f"), "f");
}

TEST_F(DataDirTest, WhiteoutsBecomeOverlayWhiteouts) {
  auto diff_id = unpack("whiteouts", {{.path = "dir/.wh.gone"},
                                      {.path = "opq/.wh..wh..opq"},
                                      {.path = "opq/new", .content = "new"},
                                      {.path = ".wh..wh.plnk/123"},
                                      {.path = "mine/", .type = AE_IFDIR},
                                      {.path = ".wh.mine"},
                                      {.path = ".wh.later"},
                                      {.path = "later/", .type = AE_IFDIR},
                                      {.path = "file", .content = "stays"},
                                      {.path = ".wh.file"}});
  fs::path dir = layout().layer_dir(diff_id);
  struct stat gone = lstat_of(dir / "dir/gone");
  EXPECT_TRUE(S_ISCHR(gone.st_mode));
  EXPECT_EQ(gone.st_rdev, makedev(0, 0));
  EXPECT_FALSE(fs::exists(dir / "dir/.wh.gone"));
  EXPECT_EQ(xattr_of(dir / "opq", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(testkit::read_file(dir / "opq/new"), "new");
  EXPECT_FALSE(fs::exists(dir / "opq/.wh..wh..opq"));
  EXPECT_FALSE(fs::exists(dir / ".wh..wh.plnk/123"));
  // Whiteouts of paths this layer has only hide lower layers' copies.
  EXPECT_EQ(xattr_of(dir / "mine", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(dir / "later", "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(S_ISDIR(lstat_of(dir / "later").st_mode));
  EXPECT_EQ(testkit::read_file(dir / "file"), "stays");
  EXPECT_EQ(xattr_of(dir / "dir", "trusted.overlay.opaque"), "");
}

TEST_F(DataDirTest, ConcurrentUnpacksOfOneLayerMakeOneCacheEntry) {
  std::vector<TarEntry> entries;
  for (int file_idx = 0; file_idx < 300; ++file_idx) {
    entries.push_back(
        {.path = "d" + std::to_string(file_idx % 10) + "/f" + std::to_string(file_idx),
         .content = std::string(1000, 'x')});
  }
  std::string tar = make_tar(entries);
  fs::path blob = write_blob("layer", testkit::compress(tar, TarCompression::kZstd));
  std::atomic<int> unpacked_here = 0;
  std::atomic<int> failures = 0;
  std::vector<std::thread> unpackers;
  for (int thread_idx = 0; thread_idx < 4; ++thread_idx) {
    unpackers.emplace_back([&] {
      auto unpacked = unpack_layer(layout(), blob, std::nullopt);
      if (!unpacked || unpacked->diff_id != oci::digest_of(tar)) ++failures;
      if (unpacked && unpacked->unpacked) ++unpacked_here;
    });
  }
  for (std::thread& unpacker : unpackers) unpacker.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(unpacked_here, 1);
  EXPECT_EQ(list(layout().layers_dir() / "sha256"),
            std::vector<std::string>{oci::digest_of(tar).hex});
  EXPECT_EQ(list(layout().layer_dir(oci::digest_of(tar))).size(), 10u);
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
}

TEST_F(DataDirTest, RemovingLayersAndCrashLeftovers) {
  auto diff_id = unpack("layer", {{.path = "a/b/c", .content = "c"}});
  ASSERT_TRUE(layer_unpacked(layout(), diff_id));
  ASSERT_TRUE(remove_layer(layout(), diff_id).has_value());
  EXPECT_FALSE(layer_unpacked(layout(), diff_id));
  EXPECT_TRUE(remove_layer(layout(), diff_id).has_value());  // already gone

  fs::create_directories(layout().layer_temp_dir() / "unpack-abc123/half/done");
  fs::create_symlink("/etc", layout().layer_temp_dir() / "unpack-abc123/half/etc");
  auto cleaned = remove_layer_temp_dirs(layout());
  ASSERT_TRUE(cleaned.has_value()) << cleaned.error().message;
  EXPECT_TRUE(list(layout().layer_temp_dir()).empty());
  EXPECT_TRUE(fs::exists("/etc/passwd"));
}

}  // namespace
}  // namespace wharf::agent

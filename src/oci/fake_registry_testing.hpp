// A fake OCI registry for unit tests, on Wharf's HTTP listener: just enough of the distribution
// API, kept in memory, with switchable auth (none, Basic, Bearer through its own /token), and
// switchable faults. For tests only.
#pragma once

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/crypto.hpp"
#include "http/server.hpp"
#include "oci/digest.hpp"

namespace wharf::oci::testing {

namespace beast_http = http::beast_http;
using Status_ = beast_http::status;

// Just enough of the distribution API, kept in memory, with switchable auth.
class FakeRegistry final : public http::Handler {
 public:
  enum class Auth { kNone, kBasic, kBearer };

  Auth auth = Auth::kNone;
  std::string user = "alice";
  std::string password = "s3cret";
  bool token_needs_credentials = false;  // the token server wants Basic
  int64_t token_lifetime = 300;
  bool corrupt_blobs = false;        // serve other bytes than stored
  bool lie_about_manifests = false;  // a wrong Docker-Content-Digest
  uint16_t port = 0;

  void handle(http::Request&& request, http::Responder respond) override {
    std::lock_guard lock(mutex_);
    log_.push_back(std::string(request.method_string()) + " " + std::string(request.target()));
    authorizations_.emplace_back(request[beast_http::field::authorization]);
    respond(route(request));
  }

  std::vector<std::string> log() {
    std::lock_guard lock(mutex_);
    return log_;
  }
  int count(std::string_view prefix) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count_if(log_.begin(), log_.end(), [&](const std::string& line) {
      return line.starts_with(prefix);
    }));
  }
  // The Authorization header of every request, in order ("" when there was none).
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }
  bool has_blob(const std::string& repo, const Digest& digest) {
    std::lock_guard lock(mutex_);
    return blobs_[repo].contains(digest.str());
  }
  void put_blob(const std::string& repo, std::string bytes) {
    std::lock_guard lock(mutex_);
    blobs_[repo][digest_of(bytes).str()] = std::move(bytes);
  }
  void put_manifest(const std::string& repo, const std::string& media_type,
                    const std::string& bytes, const std::string& tag) {
    std::lock_guard lock(mutex_);
    manifests_[repo][tag] = {media_type, bytes};
    manifests_[repo][digest_of(bytes).str()] = {media_type, bytes};
  }

 private:
  http::Reply reply(const http::Request& request, Status_ status, std::string body = "",
                    std::string content_type = "application/json") {
    return http::make_response(request, status, std::move(body), content_type);
  }

  http::Reply error(const http::Request& request, Status_ status, std::string code,
                    std::string message) {
    boost::json::object body{
        {"errors", boost::json::array{boost::json::object{{"code", code}, {"message", message}}}}};
    return reply(request, status, boost::json::serialize(body));
  }

  // The scopes a request needs and whether its credentials carry them.
  std::optional<http::Reply> check_auth(const http::Request& request, const std::string& repo) {
    std::string header(request[beast_http::field::authorization]);
    if (auth == Auth::kBasic) {
      if (header == "Basic " + base64_encode(user + ":" + password)) return std::nullopt;
      auto refused =
          error(request, Status_::unauthorized, "UNAUTHORIZED", "authentication required");
      refused.response.set(beast_http::field::www_authenticate, R"(Basic realm="fake")");
      return refused;
    }
    if (auth != Auth::kBearer) return std::nullopt;
    bool read =
        request.method() == beast_http::verb::get || request.method() == beast_http::verb::head;
    std::string scope = repo.empty() ? "" : "repository:" + repo + (read ? ":pull" : ":pull,push");
    if (header.starts_with("Bearer ")) {
      auto granted = tokens_.find(header.substr(7));
      if (granted != tokens_.end() &&
          (scope.empty() || granted->second.contains(scope) ||
           (read && granted->second.contains("repository:" + repo + ":pull,push")))) {
        return std::nullopt;
      }
    }
    auto refused = error(request, Status_::unauthorized, "UNAUTHORIZED", "authentication required");
    std::string challenge =
        "Bearer realm=\"http://127.0.0.1:" + std::to_string(port) + "/token\",service=\"fake\"";
    if (!scope.empty()) challenge += ",scope=\"" + scope + "\"";
    refused.response.set(beast_http::field::www_authenticate, challenge);
    return refused;
  }

  http::Reply token(const http::Request& request, const boost::urls::url_view& url) {
    if (token_needs_credentials && request[beast_http::field::authorization] !=
                                       "Basic " + base64_encode(user + ":" + password)) {
      return reply(request, Status_::unauthorized,
                   R"({"details":"incorrect username or password"})");
    }
    std::set<std::string> scopes;
    for (auto param : url.params()) {
      if (param.key == "scope") scopes.insert(std::string(param.value));
    }
    std::string issued = "token-" + std::to_string(tokens_.size() + 1);
    tokens_[issued] = scopes;
    return reply(request, Status_::ok,
                 boost::json::serialize(
                     boost::json::object{{"token", issued}, {"expires_in", token_lifetime}}));
  }

  http::Reply route(const http::Request& request) {
    auto parsed = boost::urls::parse_origin_form(request.target());
    if (!parsed) return reply(request, Status_::bad_request);
    boost::urls::url_view url = *parsed;
    std::string path(url.path());
    if (path == "/token") return token(request, url);
    if (path == "/v2/") {
      if (auto refused = check_auth(request, "")) return std::move(*refused);
      return reply(request, Status_::ok, "{}");
    }
    if (!path.starts_with("/v2/"))
      return reply(request, Status_::not_found, "404 page not found", "text/plain");
    for (std::string_view kind : {"/blobs/uploads/", "/blobs/", "/manifests/"}) {
      auto at = path.find(kind);
      if (at == std::string::npos) continue;
      std::string repo = path.substr(4, at - 4);
      std::string rest = path.substr(at + kind.size());
      if (auto refused = check_auth(request, repo)) return std::move(*refused);
      if (kind == "/blobs/uploads/") return uploads(request, url, repo, rest);
      if (kind == "/blobs/") return blob(request, repo, rest);
      return manifest(request, repo, rest);
    }
    return reply(request, Status_::not_found);
  }

  http::Reply blob(const http::Request& request, const std::string& repo,
                   const std::string& digest) {
    auto found = blobs_[repo].find(digest);
    if (found == blobs_[repo].end()) {
      return error(request, Status_::not_found, "BLOB_UNKNOWN", "blob unknown to registry");
    }
    std::string bytes = corrupt_blobs ? "corrupted" + found->second.substr(9) : found->second;
    if (request.method() == beast_http::verb::head) {
      http::Response response{Status_::ok, request.version()};
      response.content_length(bytes.size());
      return http::Reply::header_only(std::move(response));
    }
    return reply(request, Status_::ok, bytes, "application/octet-stream");
  }

  http::Reply uploads(const http::Request& request, const boost::urls::url_view& url,
                      const std::string& repo, const std::string& id) {
    auto location = [&](const std::string& upload_id) {
      return "/v2/" + repo + "/blobs/uploads/" + upload_id + "?_state=opaque%2Bstate";
    };
    if (request.method() == beast_http::verb::post) {
      auto mount = url.params().find("mount");
      auto from = url.params().find("from");
      if (mount != url.params().end() && from != url.params().end()) {
        auto& source = blobs_[std::string((*from).value)];
        auto found = source.find(std::string((*mount).value));
        if (found != source.end()) {
          blobs_[repo][found->first] = found->second;
          auto mounted = reply(request, Status_::created);
          mounted.response.set("Docker-Content-Digest", found->first);
          return mounted;
        }
      }
      std::string upload_id = "upload-" + std::to_string(++upload_counter_);
      uploads_[upload_id] = "";
      auto started = reply(request, Status_::accepted);
      started.response.set(beast_http::field::location, location(upload_id));
      return started;
    }
    auto upload = uploads_.find(id);
    if (upload == uploads_.end()) {
      return error(request, Status_::not_found, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
    }
    if (request.method() == beast_http::verb::patch) {
      std::string range(request[beast_http::field::content_range]);
      if (range != std::to_string(upload->second.size()) + "-" +
                       std::to_string(upload->second.size() + request.body().size() - 1)) {
        return error(request, Status_::range_not_satisfiable, "BLOB_UPLOAD_INVALID",
                     "bad range " + range);
      }
      upload->second += request.body();
      auto accepted = reply(request, Status_::accepted);
      accepted.response.set(beast_http::field::location, location(id));
      return accepted;
    }
    if (request.method() != beast_http::verb::put)
      return reply(request, Status_::method_not_allowed);
    if (url.params().find("_state") == url.params().end()) {
      return error(request, Status_::bad_request, "BLOB_UPLOAD_INVALID", "lost the _state");
    }
    upload->second += request.body();
    std::string expected(url.params().find("digest") != url.params().end()
                             ? std::string((*url.params().find("digest")).value)
                             : "");
    if (digest_of(upload->second).str() != expected) {
      return error(request, Status_::bad_request, "DIGEST_INVALID",
                   "provided digest did not match uploaded content");
    }
    blobs_[repo][expected] = std::move(upload->second);
    uploads_.erase(upload);
    auto created = reply(request, Status_::created);
    created.response.set("Docker-Content-Digest", expected);
    return created;
  }

  http::Reply manifest(const http::Request& request, const std::string& repo,
                       const std::string& reference) {
    if (request.method() == beast_http::verb::put) {
      std::string media_type(request[beast_http::field::content_type]);
      manifests_[repo][reference] = {media_type, request.body()};
      manifests_[repo][digest_of(request.body()).str()] = {media_type, request.body()};
      auto created = reply(request, Status_::created);
      created.response.set("Docker-Content-Digest", digest_of(request.body()).str());
      return created;
    }
    auto found = manifests_[repo].find(reference);
    if (found == manifests_[repo].end()) {
      return error(request, Status_::not_found, "MANIFEST_UNKNOWN", "manifest unknown");
    }
    auto served = reply(request, Status_::ok, found->second.second, found->second.first);
    served.response.set("Docker-Content-Digest", lie_about_manifests
                                                     ? digest_of("other").str()
                                                     : digest_of(found->second.second).str());
    return served;
  }

  std::mutex mutex_;
  std::vector<std::string> log_;
  std::vector<std::string> authorizations_;
  std::map<std::string, std::map<std::string, std::string>> blobs_;
  std::map<std::string, std::map<std::string, std::pair<std::string, std::string>>> manifests_;
  std::map<std::string, std::string> uploads_;
  std::map<std::string, std::set<std::string>> tokens_;
  int upload_counter_ = 0;
};

}  // namespace wharf::oci::testing

// S3Client: one signed GetObject.
#include "agent/s3_client.hpp"

#include <string_view>

#include "agent/aws_json_client.hpp"
#include "aws/sigv4.hpp"
#include "common/text.hpp"

namespace wharf::agent {

namespace {

// The text of the first <name> element of an S3 error document (empty when there is none).
std::string element(std::string_view xml, std::string_view name) {
  std::string open = "<" + std::string(name) + ">";
  auto start = xml.find(open);
  if (start == std::string_view::npos) return {};
  start += open.size();
  auto end = xml.find("</" + std::string(name) + ">", start);
  if (end == std::string_view::npos) return {};
  return std::string(xml.substr(start, end - start));
}

Error answer_error(const oci::HttpResponse& response, std::string_view doing) {
  std::string text = std::string(doing) + ": HTTP " + std::to_string(response.status);
  std::string code = element(response.body, "Code");
  if (!code.empty()) text += " " + code + ": " + element(response.body, "Message");
  if (response.status >= 500) return Error{ErrorCode::kInternal, text};
  if (response.status == 404) return Error{ErrorCode::kNotFound, text};
  if (response.status == 403) return Error{ErrorCode::kAccessDenied, text};
  return Error{ErrorCode::kClient, text};
}

// A key as a URL path: each segment encoded, and "." and ".." segments escaped too, so that no
// one on the way resolves them (S3 keys are names, not paths, and the signature covers them as
// sent).
std::string key_path(std::string_view key) {
  std::string path;
  for (std::string_view segment : split(key, '/')) {
    bool dots = !segment.empty() && segment.find_first_not_of('.') == std::string_view::npos;
    if (!dots) {
      path += uri_encode(segment) + "/";
      continue;
    }
    for (std::size_t dot_idx = 0; dot_idx < segment.size(); ++dot_idx) path += "%2E";
    path += "/";
  }
  path.pop_back();  // split() gives at least one segment
  return path;
}

}  // namespace

S3Client::S3Client(S3ClientOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      transport_(control_plane_transport(options_.insecure, options_.timeout)) {}

Result<std::string> S3Client::get_object(const S3Object& object) {
  std::string doing = "GetObject s3://" + object.bucket + "/" + object.key;
  auto base = oci::url_target(options_.endpoint);
  if (!base) return std::unexpected(base.error().context(doing));
  // Path-style: the bucket is the first segment of the path.
  std::string object_path = "/" + uri_encode(object.bucket) + "/" + key_path(object.key);
  std::string prefix = base->path;
  while (prefix.ends_with('/')) prefix.pop_back();
  aws::SignableRequest signable{"GET", prefix + object_path, {{"Host", base->host}}, {}};
  const auto& credentials = options_.credentials;
  if (!credentials.session_token.empty()) {
    signable.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  aws::sign_request(signable, credentials.access_key_id, credentials.secret_access_key,
                    credentials.region, "s3", clock_.now());

  std::string url = options_.endpoint;
  while (url.ends_with('/')) url.pop_back();
  oci::HttpRequest request = oci::make_request("GET", url + object_path);
  request.headers = std::move(signable.headers);
  request.max_body = options_.max_object_bytes;
  auto response = transport_.perform(request);
  if (!response) return std::unexpected(std::move(response.error()).context(doing));
  if (response->status != 200) return std::unexpected(answer_error(*response, doing));
  return std::move(response->body);
}

}  // namespace wharf::agent

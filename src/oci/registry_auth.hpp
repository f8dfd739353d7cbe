// How requests to registries get authorized: anonymous, HTTP Basic, or Bearer tokens from the
// realm a 401's WWW-Authenticate names, cached per registry and scope until they expire.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "oci/client.hpp"
#include "oci/http_transport.hpp"
#include "oci/www_authenticate.hpp"

namespace wharf::oci {

class RegistryAuth {
 public:
  // `transport` and `clock` must outlive this object.
  RegistryAuth(HttpTransport& transport, std::optional<RegistryCredentials> credentials,
               const Clock& clock);

  // Sends a request to `registry` with what it takes for `scope` ("repository:web:pull,push",
  // several separated by spaces). On a 401 it learns the registry's scheme from the challenge,
  // gets a token (or decides on Basic) and tries once more; a second 401 is an error saying
  // whether credentials were refused or none were given. Other statuses are the caller's.
  Result<HttpResponse> send(std::string_view registry, const std::string& scope,
                            HttpRequest request);

  // Remembers a registry's Bearer challenge (from a ping), so the first request for a scope
  // can carry a token without a 401 round trip.
  void learn(std::string_view registry, const HttpResponse& unauthorized);

 private:
  struct Token {
    std::string value;
    TimePoint expires;
  };

  Result<std::optional<std::string>> authorization(std::string_view registry,
                                                   const std::string& scope);
  Result<std::string> obtain_token(std::string_view registry, const std::string& scope,
                                   const Challenge& challenge);
  Status authenticate(std::string_view registry, const std::string& scope,
                      const HttpResponse& unauthorized);
  std::string basic_header() const;

  HttpTransport& transport_;
  std::optional<RegistryCredentials> credentials_;
  const Clock& clock_;

  std::mutex mutex_;                                                 // guards the maps below
  std::map<std::string, bool, std::less<>> basic_registries_;        // asked for Basic
  std::map<std::string, Challenge, std::less<>> bearer_challenges_;  // their Bearer challenge
  std::map<std::string, Token, std::less<>> tokens_;                 // registry + " " + scope
};

}  // namespace wharf::oci

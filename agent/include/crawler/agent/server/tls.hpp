// The TLS side of the application port.
#pragma once
#include <boost/asio/ssl/context.hpp>
#include <string>

namespace crawler::agent {

// A server context offering TLS 1.2 and later only, with the certificate
// chain and private key of these PEM files. Throws std::runtime_error
// naming the file and OpenSSL's reason when one cannot be used (missing,
// unreadable, not PEM, key not matching the certificate).
boost::asio::ssl::context make_server_tls_context(const std::string& cert_chain_file,
                                                  const std::string& key_file);

}  // namespace crawler::agent

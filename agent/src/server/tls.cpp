#include "crawler/agent/server/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <unistd.h>

#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace crawler::agent {
namespace ssl = boost::asio::ssl;

namespace {
// Asio's message for an OpenSSL error is often just "asio.ssl error";
// OpenSSL's own reason says what is wrong with the file.
[[noreturn]] void fail(const std::string& what, const boost::system::error_code& ec) {
  const char* reason = ec.category() == boost::asio::error::get_ssl_category()
                           ? ERR_reason_error_string(static_cast<unsigned long>(ec.value()))
                           : nullptr;
  ERR_clear_error();
  throw std::runtime_error(what + ": " + (reason ? reason : ec.message()));
}

void readable(const std::string& what, const std::string& file) {
  if (::access(file.c_str(), R_OK) != 0) throw std::runtime_error(what + " " + file + ": " + std::strerror(errno));
}
}  // namespace

ssl::context make_server_tls_context(const std::string& cert_chain_file, const std::string& key_file) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  // The options above exclude old versions; the minimum makes it hold even
  // for versions an OpenSSL upgrade might add below the named ones.
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  readable("TLS certificate chain", cert_chain_file);
  readable("TLS private key", key_file);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(cert_chain_file, ec);
  if (ec) fail("TLS certificate chain " + cert_chain_file, ec);
  ctx.use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) fail("TLS private key " + key_file, ec);
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TLS private key " + key_file + " does not match the certificate " +
                             cert_chain_file);
  }
  return ctx;
}

}  // namespace crawler::agent

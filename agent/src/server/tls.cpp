#include "crawler/agent/server/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace crawler::agent {
namespace ssl = boost::asio::ssl;

namespace {
[[noreturn]] void fail(const std::string& what, const boost::system::error_code& ec) {
  throw std::runtime_error(what + ": " + ec.message());
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

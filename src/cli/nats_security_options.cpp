#include "cli/nats_security_options.hpp"

namespace sig::cli {

void declare_nats_security(options& opts, nats::nats_security* security) {
  opts.add_string("nats-user", &security->user, "NATS user (with --nats-password); or user:password@ in the URL.");
  opts.add_string("nats-password", &security->password,
                  "NATS password. Prefer the environment variable: a flag shows in the process list.");
  opts.add_string("nats-token", &security->token, "NATS authentication token (prefer the environment variable).");
  opts.add_string("nats-creds", &security->creds_file, "NATS credentials file (user JWT and NKey seed, NATS accounts).");
  opts.add_flag("nats-tls", &security->tls, "Connect to NATS over TLS, verifying it with the system's CAs (tls:// URLs do too).");
  opts.add_string("nats-tls-ca", &security->tls_ca, "CA file (PEM) that signed the NATS server's certificate; turns TLS on.");
  opts.add_string("nats-tls-cert", &security->tls_cert,
                  "Client certificate (PEM) for NATS servers that verify clients (with --nats-tls-key).");
  opts.add_string("nats-tls-key", &security->tls_key, "Private key (PEM) of --nats-tls-cert.");
}

}  // namespace sig::cli

/* Signed chain heads: the message onegrid-archive signs with Ed25519 for each link it
 * appends to a hash chain (deploy/sql/current/og.chain_link.sql), which `onegridctl audit
 * verify` checks, and the key files: a secret one for archive only, a public one for
 * auditors. The caller owns every buffer; nothing here logs or allocates. */
#ifndef OG_CHAINSIG_H
#define OG_CHAINSIG_H

#include <stddef.h>
#include <stdint.h>

#define OG_CHAINSIG_PUBLIC_BYTES 32
#define OG_CHAINSIG_SECRET_BYTES 64 /* libsodium's: the seed, then the public key */
#define OG_CHAINSIG_BYTES        64
#define OG_CHAINSIG_HASH_BYTES   32
/* Longest message: the prefix, a chain name of up to OG_CHAINSIG_CHAIN_MAX bytes, three
 * numbers and a hash, each as a netstring. */
#define OG_CHAINSIG_CHAIN_MAX   256
#define OG_CHAINSIG_MESSAGE_MAX 512

/* The message signed for a link: "onegrid.chain.head.v1", chain, seq, batch, format and
 * the link's hash in lowercase hex, each as a netstring ("21:onegrid.chain.head.v1,").
 * Returns its length, or -ENAMETOOLONG when chain is longer than OG_CHAINSIG_CHAIN_MAX. */
int og_chainsig_message(const char *chain, int64_t seq, int64_t batch, int format,
                        const uint8_t hash[OG_CHAINSIG_HASH_BYTES],
                        char out[OG_CHAINSIG_MESSAGE_MAX]);

/* Reads a secret key file (its first line: the 32-byte seed in hex, as `onegridctl keygen
 * --signing` writes it); path may be "credential:NAME" (og_secret_path). Refuses a file
 * that is not a regular file or that its group or others may read or write. 0, or a
 * negative errno with err filled. */
int og_chainsig_secret_read(const char *path, uint8_t sk[OG_CHAINSIG_SECRET_BYTES],
                            uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], char *err, size_t errlen);

/* A public key from arg: 64 hex characters, or a file whose first line holds them. 0, or
 * a negative errno with err filled. */
int og_chainsig_public_read(const char *arg, uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], char *err,
                            size_t errlen);

#endif

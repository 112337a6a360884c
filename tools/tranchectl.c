/* tranchectl.c — the administrator's command line of tranche: the command
 * table, the top-level usage and dispatch.  Each row names its options (see
 * ctl.h); the handlers live in the ctl_*.c modules.  Commands with two words
 * ("asset create") are matched before one-word ones. */
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>

#include "ctl.h"

#define TX_SPEC "key=,id=,expires=,chain=,print," CTL_CONN_SPEC
#define TX_HELP_COMMON \
  "Common tx options: --key FILE (signer's seed file, required), --id ID (default random),\n" \
  "--expires MS, --chain ID (default: asked from the node), --print (sign and print\n" \
  "{\"tx\",\"sig\"} instead of submitting), --rpc HOST:PORT | --datadir DIR, --json.\n" \
  "Prints the receipt; a refusal prints `refused: <reason>: <detail>` and exits 1."

const ctl_cmd_t ctl_commands[] = {
  {"init", ctl_cmd_init, "datadir=,chain=,admin=,admin-out=", 0, 0,
   "--datadir DIR --chain ID (--admin PUBKEY | --admin-out FILE)",
   "Creates DIR (mode 0700: tranche.db, node.key, tranche.conf) and writes the genesis entry.\n"
   "--admin-out generates the admin key into FILE (mode 0600), which must not exist and must\n"
   "lie outside DIR. Prints the admin public key.\n\n"
   "example: tranchectl init --datadir /var/lib/tranche --chain bank.example/tranche/prod \\\n"
   "           --admin-out ~/admin.key"},
  {"keygen", ctl_cmd_keygen, "out=", 0, 0, "--out FILE",
   "Generates an Ed25519 key into FILE (mode 0600) and prints its public key.\n\n"
   "example: tranchectl keygen --out issuer.key"},
  {"cluster init", ctl_cmd_cluster_init, "chain=,admin=,admin-out=,node*,json", 0, 0,
   "--chain ID (--admin PUBKEY | --admin-out FILE) --node ID=RAFT_HOST:PORT,RPC_HOST:PORT,DIR\n"
   "       (3 to 7 --node) [--json]",
   "Creates the data directory of every node of a cluster (PROTOCOL.md section 8) at once. Each DIR\n"
   "is made as by `init` (mode 0700; refused if it exists), with the cluster's one node key, the\n"
   "same genesis entry byte for byte, and a tranche.conf naming its cluster_id, every cluster_node,\n"
   "the cluster_genesis inputs and listen = its RPC address. Ids are integers >= 1; no id, address\n"
   "or DIR may repeat. --admin-out generates the admin key into FILE (mode 0600), outside every\n"
   "DIR. Nothing is left behind when any DIR cannot be made. Prints `admin PUBKEY` and `vkey VKEY`\n"
   "(the verifier key of every node's checkpoints) on lines of their own; --json prints one object\n"
   "{chain, admin, vkey, genesis_ms, nodes: [{id, raft, rpc, datadir}]}. Copy each DIR, mode and\n"
   "all, to its host and run `tranched --datadir DIR` there.\n\n"
   "example: tranchectl cluster init --chain bank.example/tranche/prod --admin-out ~/admin.key \\\n"
   "           --node 1=10.0.0.1:7801,10.0.0.1:7707,n1 --node 2=10.0.0.2:7801,10.0.0.2:7707,n2 \\\n"
   "           --node 3=10.0.0.3:7801,10.0.0.3:7707,n3"},
  {"cluster join", ctl_cmd_cluster_join, "from=,node=,json", 0, 0,
   "--from DIR --node ID=RAFT_HOST:PORT,RPC_HOST:PORT,NEWDIR [--json]",
   "Makes the data directory NEWDIR of a node that joins the running cluster of the node at DIR:\n"
   "the cluster's node key, genesis and cluster lines, this node's own line, and cluster_join =\n"
   "true (it never bootstraps raft: it waits for the leader). Then run `cluster add` with the same\n"
   "--node on a running node, and start tranched on NEWDIR; it catches up by log or snapshot. Add\n"
   "the new cluster_node line to the other nodes' configs too (they read it at their next start).\n\n"
   "example: tranchectl cluster join --from /var/lib/tranche/n1 --node 4=10.0.0.4:7801,10.0.0.4:7707,n4"},
  {"cluster status", ctl_cmd_cluster_status, CTL_CONN_SPEC, 0, 0, "[--rpc HOST:PORT | --datadir DIR] [--json]",
   "Shows the node's view of its cluster (the `cluster` object of node.status): its id, role and\n"
   "term, the leader's id (- while none is known), the commit and applied indexes, and every node\n"
   "with its addresses and role. --json prints the object raw. Exit 1 when the node is not in a\n"
   "cluster.\n\n"
   "example: tranchectl cluster status --rpc 10.0.0.2:7707"},
  {"cluster transfer", ctl_cmd_cluster_control, "datadir=,to=,json", 0, 0, "--datadir DIR [--to ID] [--json]",
   "Asks the node at DIR (over its control socket) to hand the cluster's leadership to node ID;\n"
   "without --to, raft picks the node. E.g. before stopping the leader for maintenance.\n\n"
   "example: tranchectl cluster transfer --datadir /var/lib/tranche --to 2"},
  {"cluster add", ctl_cmd_cluster_control, "datadir=,node=,json", 0, 0,
   "--datadir DIR --node ID=RAFT_HOST:PORT,RPC_HOST:PORT [--json]",
   "Asks the node at DIR (over its control socket) to add node ID, with these raft and RPC\n"
   "addresses, to the cluster.\n\n"
   "example: tranchectl cluster add --datadir /var/lib/tranche --node 4=10.0.0.4:7801,10.0.0.4:7707"},
  {"cluster remove", ctl_cmd_cluster_control, "datadir=,id=,json", 0, 0, "--datadir DIR --id ID [--json]",
   "Asks the node at DIR (over its control socket) to remove node ID from the cluster.\n\n"
   "example: tranchectl cluster remove --datadir /var/lib/tranche --id 4"},

  {"account open", ctl_cmd_tx, "account=,roles=,jurisdiction=,kyc=," TX_SPEC, 0, 0,
   "--key FILE --account PK --roles ROLE[,ROLE] --jurisdiction CC --kyc true|false",
   "Opens an account (signer needs role admin). Roles: admin, agent, issuer, investor.\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl account open --key admin.key --account $PK --roles issuer \\\n"
   "           --jurisdiction US --kyc true"},
  {"account update", ctl_cmd_tx, "account=,roles=,jurisdiction=,kyc=,frozen=," TX_SPEC, 0, 0,
   "--key FILE --account PK [--roles R,..] [--jurisdiction CC] [--kyc BOOL] [--frozen BOOL]",
   "Changes an account (signer needs role admin); --roles replaces the whole set.\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl account update --key admin.key --account $PK --frozen true"},
  {"account recover", ctl_cmd_tx, "account=,to=,reason=," TX_SPEC, 0, 0,
   "--key FILE --account LOST_PK --to NEW_PK --reason TEXT",
   "Moves a lost key's account, holdings and issued assets to a new key (admin or agent).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl account recover --key admin.key --account $OLD --to $NEW --reason 'lost device'"},
  {"asset create", ctl_cmd_tx,
   "asset=,name=,kind=,currency=,principal=,units=,coupon-bps=,maturity=,rating=,risk-weight-pct=,"
   "jurisdictions=,max-holders=,min-units=,lockup-until=,document*," TX_SPEC, 0, 0,
   "--key FILE --asset ID --name TEXT --kind KIND --currency CUR --principal N --units N\n"
   "       --coupon-bps N --maturity YYYY-MM-DD --rating TEXT --risk-weight-pct N [--jurisdictions CC,CC]\n"
   "       [--max-holders N] [--min-units N] [--lockup-until MS] [--document NAME=SHA256HEX]...",
   "Creates an asset (signer needs role issuer and kyc). Kinds: term_loan, revolving, receivable,\n"
   "mortgage, bond, other. --principal is in minor units; --units is the authorised units.\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl asset create --key issuer.key --asset LOAN-1 --name 'Acme term loan' \\\n"
   "           --kind term_loan --currency USD --principal 100000000 --units 1000 --coupon-bps 650 \\\n"
   "           --maturity 2030-06-30 --rating BB --risk-weight-pct 100 --jurisdictions US,GB"},
  {"asset update", ctl_cmd_tx,
   "asset=,rating=,risk-weight-pct=,maturity=,jurisdictions=,max-holders=,min-units=,lockup-until=,"
   "document*,no-documents," TX_SPEC, 0, 0,
   "--key FILE --asset ID [--rating T] [--risk-weight-pct N] [--maturity DATE] [rules options]\n"
   "       [--document NAME=SHA256HEX]... [--no-documents]",
   "Changes an asset's terms (the issuer). Any rules option (--jurisdictions, --max-holders,\n"
   "--min-units, --lockup-until) replaces the whole rules object; --document replaces the list.\n"
   TX_HELP_COMMON "\n\nexample: tranchectl asset update --key issuer.key --asset LOAN-1 --rating B"},
  {"asset issue", ctl_cmd_tx, "asset=,to=,units=," TX_SPEC, 0, 0, "--key FILE --asset ID --to PK --units N",
   "Issues units to a holder (the issuer).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl asset issue --key issuer.key --asset LOAN-1 --to $INVESTOR --units 100"},
  {"asset redeem", ctl_cmd_tx, "asset=,from=,units=,amount=," TX_SPEC, 0, 0,
   "--key FILE --asset ID --from PK --units N --amount MINOR",
   "Burns a holder's units against a payment of --amount minor units (the issuer).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl asset redeem --key issuer.key --asset LOAN-1 --from $PK --units 10 --amount 1000000"},
  {"asset distribute", ctl_cmd_tx, "asset=,amount=,kind=,memo=," TX_SPEC, 0, 0,
   "--key FILE --asset ID --amount MINOR --kind interest|principal|other [--memo TEXT]",
   "Pays --amount minor units pro rata to every holder (the issuer).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl asset distribute --key issuer.key --asset LOAN-1 --amount 500000 --kind interest"},
  {"asset status", ctl_cmd_tx, "asset=,status=," TX_SPEC, 0, 0,
   "--key FILE --asset ID --status active|matured|defaulted|paused|closed",
   "Moves an asset's status (the issuer; an admin may pause and lift a pause).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl asset status --key issuer.key --asset LOAN-1 --status matured"},
  {"transfer", ctl_cmd_tx, "asset=,to=,units=,memo=," TX_SPEC, 0, 0,
   "--key FILE --asset ID --to PK --units N [--memo TEXT]",
   "Transfers the signer's units to another account.\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl transfer --key investor.key --asset LOAN-1 --to $PK --units 5"},
  {"force-transfer", ctl_cmd_tx, "asset=,from=,to=,units=,reason=," TX_SPEC, 0, 0,
   "--key FILE --asset ID --from PK --to PK --units N --reason TEXT",
   "Moves units between holders by authority (admin or agent).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl force-transfer --key agent.key --asset LOAN-1 --from $A --to $B --units 5 \\\n"
   "           --reason 'court order 123'"},
  {"freeze", ctl_cmd_tx, "asset=,account=,units=," TX_SPEC, 0, 0, "--key FILE --asset ID --account PK --units N",
   "Sets the frozen part of a holding; 0 unfreezes (admin or agent).\n" TX_HELP_COMMON "\n\n"
   "example: tranchectl freeze --key agent.key --asset LOAN-1 --account $PK --units 10"},
  {"sign", ctl_cmd_sign, "key=,tx=", 0, 0, "--key FILE --tx JSON",
   "Signs the exact bytes of a tx (offline) and prints {\"tx\":...,\"sig\":...}. Every tx command\n"
   "also signs offline with --print (and --chain, so the node is not asked).\n\n"
   "example: tranchectl sign --key admin.key --tx \"$(cat tx.json)\" > signed.json"},
  {"submit", ctl_cmd_submit, CTL_CONN_SPEC, 1, 1, "FILE|- [--rpc HOST:PORT | --datadir DIR] [--json]",
   "Submits a signed {\"tx\",\"sig\"} object (from `sign` or --print) and prints the receipt.\n\n"
   "example: tranchectl submit signed.json --rpc 10.0.0.5:7707"},
  {"import", ctl_cmd_import, "quiet," CTL_CONN_SPEC, 1, 1, "FILE|- [--rpc HOST:PORT | --datadir DIR] [--quiet]",
   "Bulk import: submits every line of FILE, each a signed {\"tx\",\"sig\"} object, pipelined\n"
   "on one connection and in file order. `overloaded` answers are retried; refusals are\n"
   "listed by line number and the import goes on. Shows progress on a terminal (not with\n"
   "--quiet); prints a summary. Exit 0 when every line is accepted or already in the journal, 1 otherwise.\n\n"
   "example: tranchectl import trades-2026-11-24.jsonl --datadir /var/lib/tranche/node"},

  {"account show", ctl_cmd_query, CTL_CONN_SPEC, 1, 1, "PK [--json]",
   "Shows an account: roles, jurisdiction, kyc, frozen, holdings.\n\nexample: tranchectl account show $PK"},
  {"account history", ctl_cmd_query, "cursor=,limit=," CTL_CONN_SPEC, 1, 1, "PK [--cursor C] [--limit N] [--json]",
   "Lists the entries an account signed or whose units it moved.\n\nexample: tranchectl account history $PK"},
  {"asset show", ctl_cmd_query, CTL_CONN_SPEC, 1, 1, "ID [--json]",
   "Shows an asset's terms, issuer, status, issued units and holder count.\n\nexample: tranchectl asset show LOAN-1"},
  {"asset list", ctl_cmd_query, "cursor=,limit=," CTL_CONN_SPEC, 0, 0, "[--cursor C] [--limit N] [--json]",
   "Lists assets by id.\n\nexample: tranchectl asset list --limit 50"},
  {"asset holders", ctl_cmd_query, "cursor=,limit=," CTL_CONN_SPEC, 1, 1, "ID [--cursor C] [--limit N] [--json]",
   "Lists an asset's holders.\n\nexample: tranchectl asset holders LOAN-1"},
  {"asset payouts", ctl_cmd_query, "distribution=,cursor=,limit=," CTL_CONN_SPEC, 1, 1,
   "ID [--distribution SEQ] [--cursor C] [--limit N] [--json]",
   "Lists distribution allocations.\n\nexample: tranchectl asset payouts LOAN-1 --distribution 42"},
  {"exposure", ctl_cmd_query, CTL_CONN_SPEC, 1, 1, "PK [--json]",
   "Shows an account's exposure and risk-weighted assets per holding and currency.\n\n"
   "example: tranchectl exposure $PK"},
  {"ledger head", ctl_cmd_query, CTL_CONN_SPEC, 0, 0, "[--json]",
   "Shows the journal head: size, hash, Merkle root, time.\n\nexample: tranchectl ledger head"},
  {"ledger entry", ctl_cmd_query, CTL_CONN_SPEC, 1, 1, "SEQ [--json]",
   "Shows one journal entry.\n\nexample: tranchectl ledger entry 1"},
  {"ledger checkpoint", ctl_cmd_query, CTL_CONN_SPEC, 0, 0, "[--json]",
   "Prints the node's latest signed checkpoint note (--json: with size and vkey).\n\n"
   "example: tranchectl ledger checkpoint > cp.old"},
  {"status", ctl_cmd_query, CTL_CONN_SPEC, 0, 0, "[--json]",
   "Shows the node's status: version, chain, keys, head, workers, queues, counters.\n\nexample: tranchectl status"},
  {"rpc", ctl_cmd_rpc, CTL_CONN_SPEC, 1, 2, "METHOD [PARAMS-JSON]",
   "Calls any JSON-RPC method and prints its result as JSON.\n\n"
   "example: tranchectl rpc ledger.proof '{\"seq\":1,\"size\":10}'"},

  {"verify", ctl_cmd_verify, "datadir=,checkpoint=,vkey=,threads=,timing,quiet", 0, 0,
   "--datadir DIR [--checkpoint FILE --vkey VKEY] [--threads N] [--timing] [--quiet]",
   "Offline audit of a data directory: every signature (in parallel), chain links and hashes,\n"
   "genesis, replay of every rule in memory with a check of every stored derived row and of the\n"
   "schema (a dropped append-only trigger fails the audit), and the Merkle root\n"
   "against the checkpoint (DIR/checkpoint with the node's own key, or FILE verified with VKEY so\n"
   "the audit need not trust the directory). Safe on a live directory: it audits a consistent\n"
   "copy taken with the SQLite backup API into a temporary file (in $TMPDIR, default /tmp).\n"
   "Signatures are checked on --threads threads (default: one per core) while the replay runs.\n"
   "--timing prints how long the audit took and the raw libsodium verify rate on as many threads,\n"
   "measured just before and just after, for benchmarks.  Progress shows on a terminal (not with --quiet).\n"
   "Exit 0 and `OK: ...` when sound; exit 1 and `FAILED at seq N: reason` otherwise.\n\n"
   "example: tranchectl verify --datadir /var/lib/tranche --checkpoint cp.saved --vkey \"$VKEY\""},
  {"checkpoint verify", ctl_cmd_checkpoint_verify, "vkey=", 1, 1, "FILE --vkey VKEY",
   "Verifies a signed checkpoint note offline and prints its origin, size and root.\n\n"
   "example: tranchectl checkpoint verify cp.saved --vkey \"$VKEY\""},
  {"proof inclusion", ctl_cmd_proof_inclusion, "txid=,checkpoint=,vkey=," CTL_CONN_SPEC, 0, 0,
   "--txid TXID [--checkpoint FILE] --vkey VKEY",
   "Proves that a tx is in the log under a checkpoint verified with VKEY (the node's current one,\n"
   "or FILE), checking the node's RFC 9162 proof locally.\n\n"
   "example: tranchectl proof inclusion --txid $TXID --vkey \"$VKEY\""},
  {"proof consistency", ctl_cmd_proof_consistency, "old=,vkey=," CTL_CONN_SPEC, 0, 0, "--old FILE --vkey VKEY",
   "Proves that the node's current checkpoint extends a saved older one (no fork, no rewrite).\n\n"
   "example: tranchectl proof consistency --old cp.saved --vkey \"$VKEY\""},
  {"proof export", ctl_cmd_proof_export, "out=,vkey=," CTL_CONN_SPEC, 1, 1, "TXID --out FILE [--vkey VKEY]",
   "Writes a C2SP tlog-proof of a tx: the entry bytes as extra data, the inclusion path and the\n"
   "signed checkpoint, so `proof verify` needs no daemon.\n\n"
   "example: tranchectl proof export $TXID --out tx.proof"},
  {"proof verify", ctl_cmd_proof_verify, "vkey=,json", 1, 1, "FILE --vkey VKEY",
   "Verifies a tlog-proof offline: the checkpoint signature, the leaf hash of the entry bytes and\n"
   "the inclusion path. Prints the seq, time and txid it proves.\n\n"
   "example: tranchectl proof verify tx.proof --vkey \"$VKEY\""},

  {"backup", ctl_cmd_backup, "datadir=,to=,json,quiet", 0, 0, "--datadir DIR --to FILE [--quiet]",
   "Asks the running node (control socket DIR/control.sock) for a consistent online copy of its\n"
   "database; FILE must not exist. Copies left by a backup that was killed are removed from FILE's\n"
   "directory. Progress shows on a terminal (not with --quiet). Put a backup back with\n"
   "`tranchectl restore`, never by copying it over DIR/tranche.db.\n\n"
   "example: tranchectl backup --datadir /var/lib/tranche --to /backup/tranche-$(date +%F).db"},
  {"restore", ctl_cmd_restore, "datadir=,from=,force,quiet", 0, 0, "--datadir DIR --from FILE [--force] [--quiet]",
   "Puts a backup back into a stopped node's directory. Refuses while a tranched holds DIR\n"
   "(DIR/lock) and then writes nothing. Copies FILE into DIR, audits the copy as `verify` does,\n"
   "checks that its genesis names DIR/node.key and that it extends DIR/checkpoint (a backup behind\n"
   "the published checkpoint would fork the log: refused unless --force, which moves the checkpoint\n"
   "aside). Then keeps the old database as DIR/tranche.db.before-restore-TIME-PID with its WAL and\n"
   "renames the copy into place: no stale WAL is ever left beside it.\n\n"
   "example: tranchectl restore --datadir /var/lib/tranche/node --from /backup/tranche-2026-11-24.db"},
  {"log-level", ctl_cmd_log_level, "datadir=", 1, 1, "--datadir DIR error|warn|info|debug",
   "Changes the running node's log level.\n\nexample: tranchectl log-level --datadir /var/lib/tranche debug"},
  {"ping", ctl_cmd_ping, "rpc=,datadir=,wait=,quiet", 0, 0, "[--rpc HOST:PORT | --datadir DIR] [--wait SECS] [--quiet]",
   "Asks the node for its status once (or until it answers, for up to --wait SECS). Exit codes as\n"
   "pg_isready: 0 accepting requests, 1 refusing (it closed or answered an error), 2 no answer\n"
   "(nothing listens, or it is silent), 3 usage error.\n\n"
   "example: tranched --datadir /var/lib/tranche & tranchectl ping --wait 30 && echo up"},
  {"completion", ctl_cmd_completion, "", 1, 1, "bash",
   "Prints a bash completion script for every command and option.\n\n"
   "example: tranchectl completion bash > /etc/bash_completion.d/tranchectl"},
  {"stop", ctl_cmd_stop, "datadir=", 0, 0, "--datadir DIR",
   "Stops the running node gracefully (as SIGTERM: drains, checkpoints, exits 0) and waits for it.\n\n"
   "example: tranchectl stop --datadir /var/lib/tranche"},
};

const size_t ctl_commands_n = sizeof ctl_commands / sizeof ctl_commands[0];
#define COMMANDS ctl_commands
#define COMMANDS_N ctl_commands_n

static void usage(FILE *f) {
  fprintf(f, "usage: tranchectl COMMAND [options]    (tranchectl COMMAND --help for details)\n\ncommands:\n");
  for (size_t i = 0; i < COMMANDS_N; i++) fprintf(f, "  %s\n", COMMANDS[i].name);
  fprintf(f,
          "\nThe daemon is reached at --rpc HOST:PORT, else the `rpc` or `listen` key of\n"
          "DIR/tranche.conf for --datadir DIR, else 127.0.0.1:7707. backup, log-level, stop and\n"
          "cluster transfer|add|remove use the node's Unix control socket DIR/control.sock instead.\n"
          "--rpc http://HOST:PORT speaks JSON-RPC over HTTP POST (a node behind an HTTP proxy);\n"
          "import needs HOST:PORT.\n"
          "Output is for humans; --json prints the raw result for scripts.\n"
          "Without --rpc the address comes from $TRANCHE_RPC when set.\n"
          "\nglobal options (before or after the command):\n"
          "  --wait SECS   retry connecting while nothing listens yet (a daemon starting), up to SECS\n"
          "  --version     print the version\n"
          "\nexit codes (ping has its own, as pg_isready):\n"
          "  0  done (verified, for verify and proofs)\n"
          "  1  refused by the ledger, not found, or a check failed\n"
          "  2  usage error\n"
          "  3  cannot connect, timeout, or a daemon error\n");
}

/* The row whose (one- or two-word) name matches argv; *words gets its length. */
static const ctl_cmd_t *command_find(int argc, char **argv, int *words) {
  for (size_t i = 0; i < COMMANDS_N; i++) {
    const char *n = COMMANDS[i].name, *sp = strchr(n, ' ');
    if (sp && argc >= 2 && strncmp(n, argv[0], (size_t)(sp - n)) == 0 && argv[0][sp - n] == '\0' &&
        strcmp(sp + 1, argv[1]) == 0) {
      *words = 2;
      return &COMMANDS[i];
    }
  }
  for (size_t i = 0; i < COMMANDS_N; i++)
    if (argc >= 1 && strcmp(COMMANDS[i].name, argv[0]) == 0) {
      *words = 1;
      return &COMMANDS[i];
    }
  return NULL;
}

/* "tranchectl asset" alone: list the asset subcommands. */
static int group_usage(const char *group) {
  size_t n = strlen(group), found = 0;
  for (size_t i = 0; i < COMMANDS_N; i++)
    if (strncmp(COMMANDS[i].name, group, n) == 0 && COMMANDS[i].name[n] == ' ') {
      if (found++ == 0) fprintf(stderr, "tranchectl %s: missing or unknown subcommand; one of:\n", group);
      fprintf(stderr, "  tranchectl %s %s\n", COMMANDS[i].name, COMMANDS[i].usage);
    }
  if (found == 0) {
    fprintf(stderr, "tranchectl: unknown command %s\n", group);
    usage(stderr);
  }
  return CTL_USAGE;
}

/* Takes the global --wait SECS / --wait=SECS out of argv (anywhere but after
 * a ping, whose own --wait it is).  0, or CTL_USAGE with a message. */
static int take_global_wait(int *argc, char **argv) {
  int out = 1;
  bool ping = false;
  for (int i = 1; i < *argc; i++) {
    const char *v = NULL;
    if (strcmp(argv[i], "ping") == 0 && out == 1) ping = true;
    if (!ping && strcmp(argv[i], "--wait") == 0) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "tranchectl: --wait needs a value\n");
        return CTL_USAGE;
      }
      v = argv[++i];
    } else if (!ping && strncmp(argv[i], "--wait=", 7) == 0) {
      v = argv[i] + 7;
    } else {
      argv[out++] = argv[i];
      continue;
    }
    uint64_t secs;
    if (ctl_parse_u64(v, &secs) != 0 || secs > CTL_WAIT_S_MAX) {
      fprintf(stderr, "tranchectl: --wait must be 0-%d seconds\n", CTL_WAIT_S_MAX);
      return CTL_USAGE;
    }
    ctl_wait_ms = (long)secs * 1000;
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

int main(int argc, char **argv) {
  umask(077); /* keys, backups and data directories are private from birth */
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
    printf("tranchectl %s\n", TR_VERSION);
    return CTL_OK;
  }
  int wrc = take_global_wait(&argc, argv);
  if (wrc != 0) return wrc;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? CTL_USAGE : CTL_OK;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "tranchectl: libsodium failed to initialise\n");
    return CTL_FAILED;
  }
  int words = 0;
  const ctl_cmd_t *cmd = command_find(argc - 1, argv + 1, &words);
  if (cmd == NULL) return group_usage(argv[1]);
  ctl_opts_t o;
  int rc = ctl_opts_parse(cmd, argc - 1 - words, argv + 1 + words, &o);
  if (rc != 0) return cmd->fn == ctl_cmd_ping ? 3 : rc; /* pg_isready's "no attempt" */
  if (o.help) {
    ctl_print_cmd_help(cmd, true);
    return CTL_OK;
  }
  return cmd->fn(cmd, &o);
}

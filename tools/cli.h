/* tools/cli.h — shared helpers of the vtstore command-line tool (not a public API). */
#ifndef VT_TOOLS_CLI_H
#define VT_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Exit codes of every subcommand. */
#define VT_EXIT_OK    0
#define VT_EXIT_ERROR 1
#define VT_EXIT_USAGE 2

/* One function per subcommand; argv[0] is the subcommand name. Returns an exit code. */
typedef int (*vt_cmd_fn)(int argc, char **argv);

int vt_cmd_import(int argc, char **argv);
int vt_cmd_ls(int argc, char **argv);
int vt_cmd_query(int argc, char **argv);
int vt_cmd_info(int argc, char **argv);
int vt_cmd_get(int argc, char **argv);
int vt_cmd_export(int argc, char **argv);
int vt_cmd_verify(int argc, char **argv);
int vt_cmd_gc(int argc, char **argv);
int vt_cmd_upgrade(int argc, char **argv);
int vt_cmd_rm(int argc, char **argv);
int vt_cmd_stream(int argc, char **argv);
int vt_cmd_run(int argc, char **argv);
int vt_cmd_attn(int argc, char **argv);
int vt_cmd_quant(int argc, char **argv);
int vt_cmd_bench(int argc, char **argv);

/* Parse a byte count with optional K/M/G/T suffix (powers of 1024) or a percentage-free plain
 * number. Returns 0 or -1. */
int vt_cli_parse_bytes(const char *s, uint64_t *out);
/* Parse a whole decimal number in [lo, hi] (strtod syntax, nothing after it). Returns 0 or -1. */
int vt_cli_parse_num(const char *s, double lo, double hi, double *out);
/* Print "vtstore CMD: " + message + detail of the last error to stderr. */
void vt_cli_error(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 if argv contains -h or --help. */
int vt_cli_wants_help(int argc, char **argv);
/* Argument check of a subcommand that takes exactly `nargs` positional arguments (STORE first)
 * and no options. Returns -1 when argv is fine; otherwise prints `use` (to stdout for -h/--help,
 * to stderr for a wrong count or a STORE that looks like an option) and returns the exit code. */
int vt_cli_fixed_args(int argc, char **argv, int nargs, const char *use);

#endif

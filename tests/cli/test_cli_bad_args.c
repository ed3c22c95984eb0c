/* Bad numbers and damaged stores get a clear error from the vtstore CLI ($VT_BIN), never a
 * silently changed value:
 *  - get's row range: a row number beyond 2^63 - 2 (which used to overflow `a + 1`, saturate in
 *    strtoll or be clamped to INT64_MAX) is a usage error (exit 2) saying "out of range"; signs
 *    and spaces are malformed; in-range rows past the tensor's end are an error naming them;
 *  - stream --read-size beyond 1 GiB (4G used to be cut to 32 bits: 0, the default) or not a
 *    multiple of 4096: usage error naming the option; quant --n beyond 2^64 and attn --threads
 *    beyond 4096 likewise;
 *  - a store whose chunk names a shard that is not in the index (its shard records dropped):
 *    stream fails (exit 1) naming the tensor, the chunk and the shard, as a corruption, not as
 *    a store that "kept changing"; get says the same;
 *  - VT_ECORRUPT's generic text does not claim a checksum mismatch (a truncated shard is no
 *    checksum failure), while a flipped byte still says "checksum mismatch" in its detail. */
#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include "import/gen.h"
#include "cli_util.h"
#include "vt_test.h"

/* Drop every record of named db @p db of the store @p store (in dir) and its index checksum.
 * Returns 0 or an MDB code. */
static int drop_db(const char *store, const char *db) {
    char ip[4300];
    snprintf(ip, sizeof ip, "%s/%s/index", dir, store);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc) return rc;
    mdb_env_set_maxdbs(env, 8);
    rc = mdb_env_open(env, ip, MDB_NOTLS, 0644);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc) {
        rc = mdb_dbi_open(txn, db, 0, &dbi);
        if (!rc) rc = mdb_drop(txn, dbi, 0);
        if (!rc)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    /* the edit changed data.mdb behind the store's back: without a recorded sum none is
     * checked, so the damage reaches the readers under test */
    snprintf(ip, sizeof ip, "%s/%s/index/data.xxh", dir, store);
    unlink(ip);
    return rc;
}

static void expect(const char *args, int code, const char *in_err, const char *not_in_err) {
    int rc = vt(args);
    const char *err = slurp("err.txt");
    CHECKF(rc == code && (!in_err || strstr(err, in_err)) &&
               (!not_in_err || !strstr(err, not_in_err)),
           "'%s': exit %d (want %d), stderr: %.600s", args, rc, code, err);
}

int main(void) {
    vt_test_seed();
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("test_cli_bad_args", dir, sizeof dir);

    enum { R = 64, C = 64 };
    static float w[R * C];
    for (int i = 0; i < R * C; i++) w[i] = vt_rand_normal();
    gen_st_tensor t[] = {{"w", "F32", 2, {R, C}, w, sizeof w, 0, 0, 0}};
    gbuf b = {0};
    gen_safetensors(&b, t, 1, NULL);
    char p[4400];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    CHECK(vt("import m.safetensors s.vts --format f32 -q") == 0);

    /* 1. get's row range */
    static const char *huge[] = {"w[9223372036854775807]", "w[18446744073709551616]",
                                 "w[1:18446744073709551615]", "w[99999999999999999999999:]",
                                 "w[:9223372036854775807]"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char a[256];
        snprintf(a, sizeof a, "get s.vts '%s' -o r.npy", huge[i]);
        expect(a, 2, "out of range", NULL);
    }
    static const char *bad[] = {"w[-1]", "w[+1]", "w[ 1]", "w[1:-2]", "w[x]", "w[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char a[256];
        snprintf(a, sizeof a, "get s.vts '%s' -o r.npy", bad[i]);
        expect(a, 2, "bad row range", NULL);
    }
    expect("get s.vts 'w[1:9223372036854775806]' -o r.npy", 1, "9223372036854775806", NULL);
    expect("get s.vts 'w[9223372036854775806]' -o r.npy", 1, "out of range for w (64 rows)", NULL);
    expect("get s.vts 'w[63]' -o r.npy", 0, NULL, NULL);
    expect("get s.vts 'w[2:5]' -o r.npy", 0, NULL, NULL);

    /* 2. size options that do not fit their field */
    static const char *rs[] = {"4G", "4194308K", "1025M", "6000"};
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        char a[256];
        snprintf(a, sizeof a, "stream s.vts --ram 1M --passes 1 --read-size %s", rs[i]);
        expect(a, 2, "--read-size", NULL);
    }
    expect("stream s.vts --ram 1M --passes 1 --read-size 1G", 0, NULL, NULL);
    expect("stream s.vts --ram 1M --passes 1 --read-size 64K", 0, NULL, NULL);
    expect("quant --n 99999999999999999999999", 2, "--n", NULL);
    expect("attn --q q.npy --k k.npy --v v.npy -o o.npy --threads 1e30", 2, "--threads", NULL);

    /* 5. a flipped byte is still called a checksum mismatch (in the detail) */
    CHECK(vt("import m.safetensors f.vts --format f32 -q") == 0);
    snprintf(p, sizeof p, "%s/f.vts/data/shard-000001.vts", dir);
    int fd = open(p, O_RDWR);
    CHECK(fd >= 0);
    off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
    unsigned char x = 0;
    CHECK(pread(fd, &x, 1, end - 100) == 1);
    x ^= 0x10;
    CHECK(pwrite(fd, &x, 1, end - 100) == 1);
    /* 5. ... a truncated shard is corrupt, but no checksum failed */
    CHECK(vt("import m.safetensors c.vts --format f32 -q") == 0);
    snprintf(p, sizeof p, "%s/c.vts/data/shard-000001.vts", dir);
    CHECK(truncate(p, 4096 + 100) == 0);
    expect("get f.vts w -o r.npy", 1, "checksum mismatch", NULL);
    expect("get c.vts w -o r.npy", 1, "corrupt", "checksum");

    /* 4. + 5. chunks naming a shard with no record: corruption named, not "kept changing" */
    CHECK(drop_db("s.vts", "shards") == 0);
    expect("get s.vts w -o r.npy", 1, "shard 1 is not in the index", "checksum");
    expect("stream s.vts --ram 1M --passes 1", 1, "shard 1 is not in the index", "changing");
    CHECKF(strstr(slurp("err.txt"), "tensor w chunk 0") &&
               strstr(slurp("err.txt"), "data corrupted or inconsistent"),
           "stream: %s", slurp("err.txt"));
    printf("stream: %s", slurp("err.txt"));
    return vt_test_done("test_cli_bad_args");
}

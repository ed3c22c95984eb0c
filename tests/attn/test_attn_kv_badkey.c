/* tests/attn/test_attn_kv_badkey.c — the device KV cache's flag key (kernels/attn_internal.h
 * VT_KV_BAD_KEY, which the append kernel packs, and vt_kv_bad_decode, which vt_kv_cache_check
 * reads), checked against its documented layout without a GPU: every field comes back from the
 * key at its bounds and at random values (the epoch mod 4096), no key of a valid token is
 * VT_KV_BAD_NONE, and the append kernel's atomicMin keeps the value vt_kv_cache_check must name
 * first: lowest token, then K before V, head, column, NaN/Inf before a range error at the same
 * place; within a block of 4096 epochs, every key of a newer epoch before any key of an older
 * one. Ordering is checked against a comparison of the fields, not against the key. */
#include "attn_internal.h"
#include "vt_test.h"

typedef struct fields {
    uint32_t epoch, head, col;
    uint64_t token;
    int is_v, range;
} fields;

static uint64_t key_of(const fields *f) {
    return VT_KV_BAD_KEY(f->epoch, f->token, f->is_v, f->head, f->col, f->range);
}

/* -1, 0, 1: which of a, b (same epoch) vt_kv_cache_check must report first */
static int cmp_place(const fields *a, const fields *b) {
#define CMP_(x)                                                                                    \
    if (a->x != b->x) return a->x < b->x ? -1 : 1
    CMP_(token);
    CMP_(is_v);
    CMP_(head);
    CMP_(col);
    CMP_(range);
#undef CMP_
    return 0;
}

/* a field value: its bounds half the time, else uniform in [0, n) */
static uint64_t pick(uint64_t n) {
    switch (vt_rand_u64() % 4) {
    case 0:
        return 0;
    case 1:
        return n - 1;
    default:
        return vt_rand_u64() % n;
    }
}

static fields rand_fields(void) {
    fields f;
    f.epoch = (uint32_t)(vt_rand_u64() % 2 ? pick(4096) : vt_rand_u64()); /* any u32 epoch */
    f.token = pick(VT_KV_BAD_MAX_TOKENS); /* a token index: < 2^32 - 1 */
    f.is_v = (int)(vt_rand_u64() & 1);
    f.head = (uint32_t)pick(VT_KV_BAD_MAX_HEADS);
    f.col = (uint32_t)pick(128); /* device caches: head_dim 64 or 128 */
    f.range = (int)(vt_rand_u64() & 1);
    return f;
}

int main(void) {
    vt_test_seed();
    uint64_t n_round = 0, n_order = 0, n_epoch = 0;
    for (int it = 0; it < 200000 && vt_test_failures < 20; it++) { /* a few failures tell */
        const fields a = rand_fields();
        const uint64_t ka = key_of(&a);
        const vt_kv_bad d = vt_kv_bad_decode(ka);
        CHECKF(d.epoch == (a.epoch & 4095u) && d.token == a.token && d.is_v == a.is_v &&
                   d.head == a.head && d.col == a.col && d.range == a.range,
               "key 0x%016llx of epoch %u token %llu %c head %u col %u range %d decodes as epoch "
               "%u token %llu %c head %u col %u range %d",
               (unsigned long long)ka, a.epoch, (unsigned long long)a.token, a.is_v ? 'V' : 'K',
               a.head, a.col, a.range, d.epoch, (unsigned long long)d.token, d.is_v ? 'V' : 'K',
               d.head, d.col, d.range);
        CHECKF(ka != VT_KV_BAD_NONE, "a flagged value's key 0x%016llx reads as none",
               (unsigned long long)ka);
        n_round++;
        /* a second place in the same epoch, often differing in one field only */
        fields b = rand_fields();
        b.epoch = a.epoch;
        if (vt_rand_u64() % 2) {
            fields c = a;
            switch (vt_rand_u64() % 5) {
            case 0:
                c.token = b.token;
                break;
            case 1:
                c.is_v = b.is_v;
                break;
            case 2:
                c.head = b.head;
                break;
            case 3:
                c.col = b.col;
                break;
            default:
                c.range = b.range;
                break;
            }
            b = c;
        }
        const uint64_t kb = key_of(&b);
        const int want = cmp_place(&a, &b), got = ka < kb ? -1 : ka > kb;
        CHECKF(got == want,
               "epoch %u: token %llu %c head %u col %u range %d vs token %llu %c head %u col %u "
               "range %d: keys order %d, the places %d",
               a.epoch, (unsigned long long)a.token, a.is_v ? 'V' : 'K', a.head, a.col, a.range,
               (unsigned long long)b.token, b.is_v ? 'V' : 'K', b.head, b.col, b.range, got, want);
        n_order++;
        /* a newer epoch of the same block of 4096 (resets since a stale flag was set): its key
         * is smaller whatever the places */
        if ((a.epoch & 4095u) != 4095u) {
            fields n = rand_fields();
            n.epoch = a.epoch + 1 + (uint32_t)(vt_rand_u64() % (4095u - (a.epoch & 4095u)));
            CHECKF(n.epoch >> 12 == a.epoch >> 12 && key_of(&n) < ka,
                   "epoch %u's key 0x%016llx is not below epoch %u's 0x%016llx", n.epoch,
                   (unsigned long long)key_of(&n), a.epoch, (unsigned long long)ka);
            n_epoch++;
        }
    }
    /* the largest place of a device cache, at each epoch of a block: never all ones */
    for (uint32_t e = 0; e < 4096; e++) {
        const fields m = {e, VT_KV_BAD_MAX_HEADS - 1, 127, VT_KV_BAD_MAX_TOKENS - 1, 1, 1};
        CHECKF(key_of(&m) != VT_KV_BAD_NONE, "epoch %u: the last place's key is none", e);
    }
    printf("%llu keys decoded, %llu pairs ordered, %llu newer-epoch pairs\n",
           (unsigned long long)n_round, (unsigned long long)n_order, (unsigned long long)n_epoch);
    return vt_test_done("test_attn_kv_badkey");
}

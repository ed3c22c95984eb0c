/* S3-FIFO over integer keys with byte sizes. Three FIFO queues as intrusive doubly linked lists
 * over per-key arrays: S (small, new keys), M (main), G (ghost: evicted from S, sizes only). */
#include <errno.h>
#include <string.h>

#include "tier_internal.h"

enum { Q_NONE = 0, Q_S = 1, Q_M = 2, Q_G = 3 };
#define NIL UINT32_MAX

typedef struct node {
    uint32_t prev, next;
    uint8_t q, freq;
    uint64_t bytes;
} node;

typedef struct fifo {
    uint32_t head, tail; /* head = oldest */
    uint64_t bytes;
    uint32_t n;
} fifo;

struct vt_s3fifo {
    uint64_t capacity;
    uint32_t nkeys;
    fifo q[4];
    node *nd;
};

static void q_push(vt_s3fifo *c, int qi, uint32_t k) {
    fifo *f = &c->q[qi];
    node *x = &c->nd[k];
    x->q = (uint8_t)qi;
    x->next = NIL;
    x->prev = f->tail;
    if (f->tail != NIL)
        c->nd[f->tail].next = k;
    else
        f->head = k;
    f->tail = k;
    f->bytes += x->bytes;
    f->n++;
}

static void q_unlink(vt_s3fifo *c, uint32_t k) {
    node *x = &c->nd[k];
    fifo *f = &c->q[x->q];
    if (x->prev != NIL)
        c->nd[x->prev].next = x->next;
    else
        f->head = x->next;
    if (x->next != NIL)
        c->nd[x->next].prev = x->prev;
    else
        f->tail = x->prev;
    f->bytes -= x->bytes;
    f->n--;
    x->q = Q_NONE;
}

int vt_s3fifo_create(uint64_t capacity, uint32_t nkeys, vt_s3fifo **out) {
    vt_s3fifo *c = vt_calloc(1, sizeof *c);
    node *nd = vt_calloc(nkeys ? nkeys : 1, sizeof *nd);
    if (!c || !nd) {
        vt_free(c);
        vt_free(nd);
        return vt_fail(-ENOMEM, "s3fifo: out of memory");
    }
    c->capacity = capacity;
    c->nkeys = nkeys;
    c->nd = nd;
    for (int i = 0; i < 4; i++) c->q[i] = (fifo){NIL, NIL, 0, 0};
    *out = c;
    return 0;
}

void vt_s3fifo_destroy(vt_s3fifo *c) {
    if (!c) return;
    vt_free(c->nd);
    vt_free(c);
}

int vt_s3fifo_contains(const vt_s3fifo *c, uint32_t key) {
    return key < c->nkeys && (c->nd[key].q == Q_S || c->nd[key].q == Q_M);
}

int vt_s3fifo_access(vt_s3fifo *c, uint32_t key) {
    if (!vt_s3fifo_contains(c, key)) return 0;
    if (c->nd[key].freq < 3) c->nd[key].freq++;
    return 1;
}

uint64_t vt_s3fifo_used(const vt_s3fifo *c) {
    return c->q[Q_S].bytes + c->q[Q_M].bytes;
}

uint64_t vt_s3fifo_overflow(const vt_s3fifo *c, uint64_t bytes) {
    uint64_t u = vt_s3fifo_used(c) + bytes;
    return u > c->capacity ? u - c->capacity : 0;
}

void vt_s3fifo_insert(vt_s3fifo *c, uint32_t key, uint64_t bytes) {
    if (key >= c->nkeys || vt_s3fifo_contains(c, key)) return;
    int ghost = c->nd[key].q == Q_G;
    if (ghost) q_unlink(c, key);
    c->nd[key].bytes = bytes;
    c->nd[key].freq = 0;
    q_push(c, ghost ? Q_M : Q_S, key);
}

void vt_s3fifo_remove(vt_s3fifo *c, uint32_t key) {
    if (key < c->nkeys && c->nd[key].q != Q_NONE) q_unlink(c, key);
}

/* Ghost holds about as many bytes as main's share of the capacity. */
static void ghost_add(vt_s3fifo *c, uint32_t k) {
    q_push(c, Q_G, k);
    uint64_t lim = c->capacity - c->capacity / 10;
    while (c->q[Q_G].bytes > lim && c->q[Q_G].n > 1) q_unlink(c, c->q[Q_G].head);
}

int vt_s3fifo_evict(vt_s3fifo *c, vt_s3fifo_can_evict can, void *ctx, uint32_t *victim) {
    /* every resident key is looked at a bounded number of times (freq <= 3, one skip per pass) */
    uint64_t budget = 8ull * (c->q[Q_S].n + c->q[Q_M].n) + 8;
    /* keys found in use: in small (they stay there), and in main since it last changed. A queue
     * whose keys are all in use is passed over, even small under its 10% share: -EBUSY while
     * an evictable key was left in small once blocked an acquire for good. */
    uint32_t s_busy = 0, m_busy = 0;
    while (budget--) {
        int s_ok = c->q[Q_S].n && s_busy < c->q[Q_S].n;
        int m_ok = c->q[Q_M].n && m_busy < c->q[Q_M].n;
        if (!s_ok && !m_ok) return -EBUSY;
        int from_small = s_ok && (c->q[Q_S].bytes >= c->capacity / 10 || !m_ok);
        uint32_t k = c->q[from_small ? Q_S : Q_M].head;
        node *x = &c->nd[k];
        q_unlink(c, k);
        if (from_small) {
            if (x->freq > 0) { /* seen again while on probation: promote */
                x->freq = 0;
                q_push(c, Q_M, k);
                m_busy = 0;
            } else if (can && !can(ctx, k)) {
                q_push(c, Q_S, k); /* in use: look later */
                s_busy++;
            } else {
                ghost_add(c, k);
                *victim = k;
                return 0;
            }
        } else {
            if (x->freq > 0) {
                x->freq--;
                q_push(c, Q_M, k);
                m_busy = 0;
            } else if (can && !can(ctx, k)) {
                q_push(c, Q_M, k);
                m_busy++;
            } else {
                x->q = Q_NONE;
                *victim = k;
                return 0;
            }
        }
    }
    return -EBUSY;
}

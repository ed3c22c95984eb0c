/* hf_config.c — config.json / tokenizer.json of a Hugging Face Llama model (see hf_config.h). */
#include "hf_config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtstore/meta.h"

/* ---- JSON reader ---------------------------------------------------------------------------- */

typedef struct {
    hj_doc *d;
    const char *s, *p;
    int depth;
} hj_parser;

static int hj_err(hj_parser *ps, const char *what) {
    return vt_fail(VT_EFORMAT, "JSON: %s at byte %zu", what, (size_t)(ps->p - ps->s));
}

static void hj_ws(hj_parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static uint32_t hj_new(hj_parser *ps, int type) {
    hj_doc *d = ps->d;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 1024;
        hj_node *v = vt_realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        d->v = v;
        d->cap = cap;
    }
    hj_node *nd = &d->v[d->n];
    memset(nd, 0, sizeof *nd);
    nd->type = type;
    return d->n++;
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | c >> 18);
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* A string at ps->p (on the quote), decoded into the arena: *off, *len. The decoded bytes plus
 * the NUL never exceed the raw text with its quotes, so an arena of strlen(text) + 1 holds all. */
static int hj_string(hj_parser *ps, size_t *off, size_t *len) {
    hj_doc *d = ps->d;
    char *o = d->arena + d->an;
    size_t n = 0;
    ps->p++;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') break;
        if (c == 0) return hj_err(ps, "unterminated string");
        if (c < 0x20) return hj_err(ps, "control character in a string");
        if (c != '\\') {
            o[n++] = (char)c;
            ps->p++;
            continue;
        }
        char e = ps->p[1];
        ps->p += 2;
        switch (e) {
        case '"':
            o[n++] = '"';
            break;
        case '\\':
            o[n++] = '\\';
            break;
        case '/':
            o[n++] = '/';
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u': {
            uint32_t u, lo;
            if (hex4(ps->p, &u)) return hj_err(ps, "bad \\u escape");
            ps->p += 4;
            if (u >= 0xD800 && u < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u' &&
                !hex4(ps->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                ps->p += 6;
            } else if (u >= 0xD800 && u < 0xE000) {
                u = 0xFFFD; /* a lone surrogate */
            }
            n += put_utf8(o + n, u);
            break;
        }
        default:
            ps->p -= 2;
            return hj_err(ps, "bad escape");
        }
    }
    ps->p++;
    o[n] = 0;
    *off = d->an;
    *len = n;
    d->an += n + 1;
    return 0;
}

static int hj_value(hj_parser *ps, uint32_t *out);

static int hj_container(hj_parser *ps, uint32_t self, int obj) {
    char close = obj ? '}' : ']';
    uint32_t last = 0;
    ps->p++;
    hj_ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        size_t koff = 0, klen = 0;
        int rc;
        if (obj) {
            hj_ws(ps);
            if (*ps->p != '"') return hj_err(ps, "expected a key");
            if ((rc = hj_string(ps, &koff, &klen))) return rc;
            hj_ws(ps);
            if (*ps->p != ':') return hj_err(ps, "expected ':'");
            ps->p++;
        }
        uint32_t child;
        if ((rc = hj_value(ps, &child))) return rc;
        hj_node *v = ps->d->v;
        v[child].key = koff;
        v[child].klen = klen;
        if (last)
            v[last].next = child;
        else
            v[self].first = child;
        v[self].count++;
        last = child;
        hj_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            return 0;
        }
        return hj_err(ps, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int hj_value(hj_parser *ps, uint32_t *out) {
    hj_ws(ps);
    char c = *ps->p;
    uint32_t i;
    int rc = 0;
    if (c == '{' || c == '[') {
        if (++ps->depth > 256) return hj_err(ps, "nested too deeply");
        if (!(i = hj_new(ps, c == '{' ? HJ_OBJ : HJ_ARR))) return vt_fail(-ENOMEM, "out of memory");
        rc = hj_container(ps, i, c == '{');
        ps->depth--;
    } else if (c == '"') {
        if (!(i = hj_new(ps, HJ_STR))) return vt_fail(-ENOMEM, "out of memory");
        size_t off, len;
        if (!(rc = hj_string(ps, &off, &len))) {
            ps->d->v[i].str = off;
            ps->d->v[i].len = len;
        }
    } else if (!strncmp(ps->p, "true", 4) || !strncmp(ps->p, "false", 5)) {
        if (!(i = hj_new(ps, HJ_BOOL))) return vt_fail(-ENOMEM, "out of memory");
        ps->d->v[i].num = c == 't';
        ps->p += c == 't' ? 4 : 5;
    } else if (!strncmp(ps->p, "null", 4)) {
        if (!(i = hj_new(ps, HJ_NULL))) return vt_fail(-ENOMEM, "out of memory");
        ps->p += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        double v = strtod(ps->p, &end);
        if (end == ps->p) return hj_err(ps, "bad number");
        if (!(i = hj_new(ps, HJ_NUM))) return vt_fail(-ENOMEM, "out of memory");
        ps->d->v[i].num = v;
        ps->p = end;
    } else {
        return hj_err(ps, "unexpected character");
    }
    *out = i;
    return rc;
}

int hj_parse(const char *text, hj_doc *d) {
    memset(d, 0, sizeof *d);
    size_t n = strlen(text);
    d->arena = vt_malloc(n + 1);
    hj_parser ps = {d, text, text, 0};
    if (d->arena) hj_new(&ps, HJ_NULL); /* v[0]: "none" */
    if (!d->arena || d->n != 1) {
        hj_free(d);
        return vt_fail(-ENOMEM, "out of memory parsing JSON");
    }
    uint32_t root;
    int rc = hj_value(&ps, &root);
    if (!rc) {
        hj_ws(&ps);
        if (*ps.p) rc = hj_err(&ps, "trailing text");
    }
    if (rc) hj_free(d);
    return rc;
}

void hj_free(hj_doc *d) {
    vt_free(d->v);
    vt_free(d->arena);
    memset(d, 0, sizeof *d);
}

uint32_t hj_get(const hj_doc *d, uint32_t obj, const char *key) {
    if (!obj || d->v[obj].type != HJ_OBJ) return 0;
    size_t kl = strlen(key);
    uint32_t found = 0;
    for (uint32_t c = d->v[obj].first; c; c = d->v[c].next) /* the last duplicate wins */
        if (d->v[c].klen == kl && !memcmp(d->arena + d->v[c].key, key, kl)) found = c;
    return found;
}

/* ---- store metadata ---------------------------------------------------------------------------
 */

/* The string metadata @p key (vt_malloc'ed, NUL-terminated). */
static int meta_text(vt_store *s, const char *key, char **out) {
    size_t len = 0;
    char probe[1];
    int rc = vt_meta_get_string(s, key, probe, sizeof probe, &len);
    if (rc && rc != -ERANGE) return rc == VT_ENOTFOUND ? rc : vt_fail(rc, "store metadata %s", key);
    vt_clear_error();
    char *t = vt_malloc(len + 1);
    if (!t) return vt_fail(-ENOMEM, "out of memory for %s", key);
    if ((rc = vt_meta_get_string(s, key, t, len + 1, NULL))) {
        vt_free(t);
        return vt_fail(rc, "store metadata %s", key);
    }
    *out = t;
    return 0;
}

/* ---- config.json ---------------------------------------------------------------------------- */

static int cfg_u32(const hj_doc *d, const char *key, uint32_t *out, int required, uint32_t def) {
    uint32_t i = hj_get(d, 1, key);
    if (!i || d->v[i].type == HJ_NULL) {
        if (required) return vt_fail(VT_EFORMAT, "config.json has no %s", key);
        *out = def;
        return 0;
    }
    double v = d->v[i].num;
    if (d->v[i].type != HJ_NUM || v < 0 || v > UINT32_MAX || v != floor(v))
        return vt_fail(VT_EFORMAT, "config.json: %s is not a non-negative integer", key);
    *out = (uint32_t)v;
    return 0;
}

static int cfg_f32(const hj_doc *d, const char *key, float *out, float def) {
    uint32_t i = hj_get(d, 1, key);
    if (!i || d->v[i].type == HJ_NULL) {
        *out = def;
        return 0;
    }
    if (d->v[i].type != HJ_NUM) return vt_fail(VT_EFORMAT, "config.json: %s is not a number", key);
    /* 1e999 parses as inf, and a double beyond FLT_MAX has no float value */
    double v = d->v[i].num;
    if (!(fabs(v) <= FLT_MAX))
        return vt_fail(VT_EFORMAT, "config.json: %s is %g: not a finite 32-bit float", key, v);
    *out = (float)v;
    return 0;
}

/* bos/eos: an integer, or the first of a list of them; -1 if absent. */
static int32_t cfg_id(const hj_doc *d, const char *key) {
    uint32_t i = hj_get(d, 1, key);
    if (i && d->v[i].type == HJ_ARR) i = d->v[i].first;
    if (!i || d->v[i].type != HJ_NUM || d->v[i].num < 0 || d->v[i].num > INT32_MAX) return -1;
    return (int32_t)d->v[i].num;
}

/* Every id of @p key: an integer or a list of them (generation stops at any: Llama 3.1's
 * eos_token_id is [128001, 128008, 128009]); entries that are no valid id are skipped. */
static int cfg_ids(const hj_doc *d, const char *file, const char *key, int32_t *ids, uint32_t *n) {
    uint32_t i = hj_get(d, 1, key);
    int list = i && d->v[i].type == HJ_ARR;
    *n = 0;
    for (uint32_t e = list ? d->v[i].first : i; e; e = list ? d->v[e].next : 0) {
        double v = d->v[e].num;
        if (d->v[e].type != HJ_NUM || v < 0 || v > INT32_MAX || v != floor(v)) continue;
        if (*n == VT_HF_MAX_EOS)
            return vt_fail(VT_EFORMAT, "%s: %s lists more than %d ids", file, key, VT_HF_MAX_EOS);
        ids[(*n)++] = (int32_t)v;
    }
    return 0;
}

/* rope_scaling: null/absent, or an object with rope_type (or "type"); for "llama3" its four
 * numbers, all required (transformers requires them too). */
static int cfg_rope_obj(const hj_doc *d, uint32_t rs, const char *what, vt_hf_config *c);

static int cfg_rope_scaling(const hj_doc *d, vt_hf_config *c) {
    uint32_t rs = hj_get(d, 1, "rope_scaling");
    if (!rs || d->v[rs].type == HJ_NULL) return 0;
    if (d->v[rs].type != HJ_OBJ)
        return vt_fail(VT_EFORMAT, "config.json: rope_scaling is neither null nor an object");
    return cfg_rope_obj(d, rs, "rope_scaling", c);
}

/* A positive finite f32 @p key of object @p o (0: absent), or VT_EFORMAT naming @p what. */
static int obj_f32(const hj_doc *d, uint32_t o, const char *what, const char *key, float *out) {
    uint32_t n = hj_get(d, o, key);
    if (!n || d->v[n].type == HJ_NULL) return 0;
    double v = d->v[n].num;
    if (d->v[n].type != HJ_NUM || !(v > 0 && v <= FLT_MAX))
        return vt_fail(VT_EFORMAT, "config.json: %s %s is not a positive finite 32-bit float", what,
                       key);
    *out = (float)v;
    return 0;
}

/* transformers 5 keeps RoPE in rope_parameters, not rope_theta / rope_scaling: an object with
 * rope_type, rope_theta and the type's numbers, or one per attention kind (Gemma 3:
 * full_attention, and sliding_attention for the windowed layers, which must not scale). It
 * replaces what the older keys said. */
static int cfg_rope_parameters(const hj_doc *d, vt_hf_config *c) {
    uint32_t rp = hj_get(d, 1, "rope_parameters");
    if (!rp || d->v[rp].type == HJ_NULL) return 0;
    if (d->v[rp].type != HJ_OBJ)
        return vt_fail(VT_EFORMAT, "config.json: rope_parameters is neither null nor an object");
    const char *what = "rope_parameters";
    uint32_t full = hj_get(d, rp, "full_attention"), sl = hj_get(d, rp, "sliding_attention");
    int rc;
    if (sl && d->v[sl].type == HJ_OBJ) {
        uint32_t ty = hj_get(d, sl, "rope_type");
        if (ty && (d->v[ty].type != HJ_STR || strcmp(hj_str(d, ty), "default")))
            return vt_fail(VT_EUNSUPPORTED,
                           "config.json: rope_parameters.sliding_attention rope_type is not "
                           "\"default\" (scaled windowed layers are not supported)");
        if ((rc = obj_f32(d, sl, "rope_parameters.sliding_attention", "rope_theta",
                          &c->rope_local_base)))
            return rc;
    }
    if (full && d->v[full].type == HJ_OBJ) {
        rp = full;
        what = "rope_parameters.full_attention";
    }
    if ((rc = obj_f32(d, rp, what, "rope_theta", &c->rope_theta))) return rc;
    c->rope_type[0] = 0;
    c->rope_factor = c->rope_low_freq = c->rope_high_freq = 0;
    c->rope_orig_max_pos = 0;
    return hj_get(d, rp, "rope_type") ? cfg_rope_obj(d, rp, what, c) : 0;
}

/* A RoPE scaling object @p rs (rope_scaling, or rope_parameters' @p what): rope_type (or "type");
 * for "llama3" its four numbers, all required (transformers requires them too), for "linear" its
 * factor. */
static int cfg_rope_obj(const hj_doc *d, uint32_t rs, const char *what, vt_hf_config *c) {
    uint32_t ty = hj_get(d, rs, "rope_type");
    if (!ty) ty = hj_get(d, rs, "type");
    if (!ty || d->v[ty].type != HJ_STR)
        return vt_fail(VT_EFORMAT, "config.json: %s has no rope_type string", what);
    snprintf(c->rope_type, sizeof c->rope_type, "%s", hj_str(d, ty));
    if (!c->rope_type[0]) snprintf(c->rope_type, sizeof c->rope_type, "?");
    if (!strcmp(c->rope_type, "linear")) { /* transformers: the frequencies / factor */
        uint32_t n = hj_get(d, rs, "factor");
        double f = n && d->v[n].type == HJ_NUM ? d->v[n].num : 0;
        if (!(f > 0 && f <= FLT_MAX))
            return vt_fail(VT_EFORMAT, "config.json: %s (linear) has no positive finite factor",
                           what);
        c->rope_factor = (float)f;
        return 0;
    }
    if (strcmp(c->rope_type, "llama3")) return 0;
    static const char *const keys[4] = {"factor", "low_freq_factor", "high_freq_factor",
                                        "original_max_position_embeddings"};
    double v[4];
    for (int k = 0; k < 4; k++) {
        uint32_t n = hj_get(d, rs, keys[k]);
        if (!n || d->v[n].type != HJ_NUM)
            return vt_fail(VT_EFORMAT, "config.json: %s (llama3) has no number %s", what, keys[k]);
        v[k] = d->v[n].num;
    }
    for (int k = 0; k < 3; k++)
        if (!(fabs(v[k]) <= FLT_MAX))
            return vt_fail(VT_EFORMAT,
                           "config.json: %s (llama3) %s is %g: not a finite 32-bit float", what,
                           keys[k], v[k]);
    if (!(v[3] >= 1 && v[3] <= UINT32_MAX && v[3] == floor(v[3])))
        return vt_fail(VT_EFORMAT,
                       "config.json: %s original_max_position_embeddings %g is not a positive "
                       "integer",
                       what, v[3]);
    c->rope_factor = (float)v[0];
    c->rope_low_freq = (float)v[1];
    c->rope_high_freq = (float)v[2];
    c->rope_orig_max_pos = (uint32_t)v[3];
    return 0;
}

/* Parse @p json, the text of @p file, which must be a JSON object. */
static int parse_object(const char *json, const char *file, hj_doc *d) {
    int rc = hj_parse(json, d);
    if (rc) return vt_fail(rc, "%s: %s", file, vt_last_error());
    if (d->v[1].type != HJ_OBJ) {
        hj_free(d);
        return vt_fail(VT_EFORMAT, "%s is not an object", file);
    }
    return 0;
}

/* Gemma 3's keys (model_type gemma3_text; zeros for other models). */
static int cfg_gemma(const hj_doc *d, vt_hf_config *c) {
    int rc;
    if ((rc = cfg_f32(d, "query_pre_attn_scalar", &c->query_pre_attn_scalar, 0)) ||
        (rc = cfg_u32(d, "sliding_window_pattern", &c->window_pattern, 0, 0)) ||
        (!c->window_pattern &&
         (rc = cfg_u32(d, "_sliding_window_pattern", &c->window_pattern, 0, 0))) ||
        (rc = cfg_f32(d, "rope_local_base_freq", &c->rope_local_base, 0)) ||
        (rc = cfg_f32(d, "final_logit_softcapping", &c->final_softcap, 0)) ||
        (rc = cfg_f32(d, "attn_logit_softcapping", &c->attn_softcap, 0)))
        return rc;
    const char *const act_keys[2] = {"hidden_activation", "hidden_act"};
    for (int k = 0; k < 2 && !c->hidden_act[0]; k++) {
        uint32_t a = hj_get(d, 1, act_keys[k]);
        if (a && d->v[a].type == HJ_STR)
            snprintf(c->hidden_act, sizeof c->hidden_act, "%s", hj_str(d, a));
    }
    uint32_t lt = hj_get(d, 1, "layer_types");
    if (!lt || d->v[lt].type == HJ_NULL) return 0;
    if (d->v[lt].type != HJ_ARR)
        return vt_fail(VT_EFORMAT, "config.json: layer_types is not a list");
    for (uint32_t e = d->v[lt].first; e; e = d->v[e].next) {
        if (c->n_layer_types == sizeof c->layer_sliding)
            return vt_fail(VT_EFORMAT, "config.json: layer_types lists more than %zu layers",
                           sizeof c->layer_sliding);
        const char *t = d->v[e].type == HJ_STR ? hj_str(d, e) : "";
        int sliding = !strcmp(t, "sliding_attention");
        if (!sliding && strcmp(t, "full_attention"))
            return vt_fail(VT_EFORMAT,
                           "config.json: layer_types[%u] is not \"sliding_attention\" or "
                           "\"full_attention\"",
                           c->n_layer_types);
        c->layer_sliding[c->n_layer_types++] = (uint8_t)sliding;
    }
    return 0;
}

/* Gemma3ForConditionalGeneration's config.json (model_type gemma3): the language model's keys
 * are in its text_config object (a Gemma3TextConfig); the ids generate() stops at and starts
 * from stay at the top (eos_token_id [1, 106]). Reads those, then makes text_config the root
 * that the rest of the parse reads. */
static int cfg_multimodal(hj_doc *d, vt_hf_config *c, int32_t *top_bos, int32_t *top_eos,
                          uint32_t *n_top_eos) {
    uint32_t tc = hj_get(d, 1, "text_config");
    if (!tc || d->v[tc].type != HJ_OBJ)
        return vt_fail(VT_EFORMAT, "config.json: model_type gemma3 without a text_config object");
    *top_bos = cfg_id(d, "bos_token_id");
    int rc = cfg_ids(d, "config.json", "eos_token_id", top_eos, n_top_eos);
    if (rc) return rc;
    d->v[1] = d->v[tc]; /* the root's members are text_config's now */
    uint32_t mt = hj_get(d, 1, "model_type");
    const char *t = mt && d->v[mt].type == HJ_STR ? hj_str(d, mt) : "gemma3_text";
    if (strcmp(t, "gemma3_text"))
        return vt_fail(VT_EUNSUPPORTED,
                       "config.json: model_type gemma3 whose text_config model_type is '%s' (not "
                       "gemma3_text)",
                       t);
    snprintf(c->model_type, sizeof c->model_type, "gemma3_text");
    c->multimodal = 1;
    return 0;
}

int vt_hf_config_parse(const char *json, vt_hf_config *c) {
    memset(c, 0, sizeof *c);
    hj_doc d;
    int rc = parse_object(json, "config.json", &d);
    if (rc) return rc;
    uint32_t mt = hj_get(&d, 1, "model_type");
    if (mt && d.v[mt].type == HJ_STR)
        snprintf(c->model_type, sizeof c->model_type, "%s", hj_str(&d, mt));
    int32_t top_bos = -1, top_eos[VT_HF_MAX_EOS];
    uint32_t n_top_eos = 0;
    if (!strcmp(c->model_type, "gemma3") &&
        (rc = cfg_multimodal(&d, c, &top_bos, top_eos, &n_top_eos))) {
        hj_free(&d);
        return rc;
    }
    /* Gemma3TextConfig's defaults stand in for absent keys (text_config objects list few);
     * other models need the sizes */
    const int g3 = !strcmp(c->model_type, "gemma3_text");
    if (!(rc = cfg_u32(&d, "hidden_size", &c->hidden_size, !g3, 2304)) &&
        !(rc = cfg_u32(&d, "intermediate_size", &c->intermediate_size, !g3, 9216)) &&
        !(rc = cfg_u32(&d, "num_hidden_layers", &c->n_layers, !g3, 26)) &&
        !(rc = cfg_u32(&d, "num_attention_heads", &c->n_heads, !g3, 8)) &&
        !(rc = cfg_u32(&d, "num_key_value_heads", &c->n_kv_heads, 0, g3 ? 4 : c->n_heads)) &&
        !(rc = cfg_u32(&d, "head_dim", &c->head_dim, 0, g3 ? 256 : 0)) &&
        !(rc = cfg_u32(&d, "sliding_window", &c->window, 0, g3 ? 4096 : 0)) &&
        !(rc = cfg_u32(&d, "max_window_layers", &c->max_window_layers, 0, 28)) &&
        !(rc = cfg_u32(&d, "vocab_size", &c->vocab_size, 0, g3 ? 262208 : 0)) &&
        !(rc = cfg_u32(&d, "max_position_embeddings", &c->max_pos, 0, g3 ? 131072 : 0)) &&
        !(rc = cfg_f32(&d, "rope_theta", &c->rope_theta, g3 ? 1e6f : 10000.0f)) &&
        !(rc = cfg_f32(&d, "rms_norm_eps", &c->rms_eps, 1e-6f))) {
        uint32_t t = hj_get(&d, 1, "tie_word_embeddings");
        c->tie = t && d.v[t].type == HJ_BOOL ? (int)d.v[t].num : g3 ? 1 : -1;
        uint32_t sw = hj_get(&d, 1, "use_sliding_window");
        c->sliding_window = sw && d.v[sw].type == HJ_BOOL && d.v[sw].num;
        uint32_t ab = hj_get(&d, 1, "attention_bias"), mb = hj_get(&d, 1, "mlp_bias");
        c->attention_bias = ab && d.v[ab].type == HJ_BOOL && d.v[ab].num;
        c->mlp_bias = mb && d.v[mb].type == HJ_BOOL && d.v[mb].num;
        c->bos_id = cfg_id(&d, "bos_token_id");
        rc = cfg_ids(&d, "config.json", "eos_token_id", c->eos_ids, &c->n_eos);
        if (c->multimodal && top_bos >= 0) c->bos_id = top_bos;
        if (c->multimodal && n_top_eos) {
            memcpy(c->eos_ids, top_eos, n_top_eos * sizeof *top_eos);
            c->n_eos = n_top_eos;
        }
        if (g3 && c->bos_id < 0) c->bos_id = 2; /* Gemma3TextConfig's */
        if (g3 && !c->n_eos) c->eos_ids[c->n_eos++] = 1;
        c->eos_id = c->n_eos ? c->eos_ids[0] : -1;
        if (!rc) rc = cfg_rope_scaling(&d, c);
        /* only Gemma 3's: other models' layer_types (Qwen3-Next's "linear_attention", ...)
         * must reach the runner's refusal of their model_type, not fail here */
        if (!rc && !strcmp(c->model_type, "gemma3_text")) rc = cfg_gemma(&d, c);
        if (!rc) rc = cfg_rope_parameters(&d, c); /* after cfg_gemma: it sets rope_local_base */
    }
    hj_free(&d);
    return rc;
}

int vt_hf_rope_llama3(const vt_hf_config *c, float theta, uint32_t rope_dim, float *out) {
    double factor = c->rope_factor, low = c->rope_low_freq, high = c->rope_high_freq,
           orig = c->rope_orig_max_pos;
    if (!(factor > 0) || !(low > 0) || !(high > low) || !(orig > 0))
        return vt_fail(VT_EFORMAT,
                       "config.json rope_scaling (llama3): factor %g, low_freq_factor %g, "
                       "high_freq_factor %g, original_max_position_embeddings %g cannot scale",
                       factor, low, high, orig);
    const double pi = 3.14159265358979323846;
    for (uint32_t i = 0; i < rope_dim / 2; i++) {
        double w = 2 * pi / pow((double)theta, -2.0 * i / rope_dim);
        if (w < orig / high) {
            out[i] = 1.0f;
        } else if (w > orig / low) {
            out[i] = (float)factor;
        } else {
            double sm = (orig / w - low) / (high - low);
            out[i] = (float)(1 / ((1 - sm) / factor + sm));
        }
    }
    return 0;
}

int vt_hf_generation_config_apply(const char *json, vt_hf_config *c) {
    hj_doc d;
    int rc = parse_object(json, "generation_config.json", &d);
    if (rc) return rc;
    uint32_t e = hj_get(&d, 1, "eos_token_id");
    if (e && d.v[e].type != HJ_NULL) {
        int32_t ids[VT_HF_MAX_EOS];
        uint32_t n = 0;
        rc = cfg_ids(&d, "generation_config.json", "eos_token_id", ids, &n);
        if (!rc && n) { /* what generate() stops at */
            memcpy(c->eos_ids, ids, n * sizeof *ids);
            c->n_eos = n;
            c->eos_id = ids[0];
        }
    }
    const int32_t bos = cfg_id(&d, "bos_token_id"); /* -1: absent, null or no id */
    if (!rc && bos >= 0) c->bos_id = bos;
    hj_free(&d);
    return rc;
}

int vt_hf_config_load(vt_store *s, vt_hf_config *c) {
    char *text = NULL;
    int rc = meta_text(s, "config.json", &text);
    if (rc) return rc;
    rc = vt_hf_config_parse(text, c);
    vt_free(text);
    if (rc) return rc;
    if ((rc = meta_text(s, "generation_config.json", &text)) == VT_ENOTFOUND) {
        vt_clear_error();
        return 0;
    }
    if (rc) return rc;
    rc = vt_hf_generation_config_apply(text, c);
    vt_free(text);
    return rc;
}

int vt_hf_chat_template(vt_store *s, char **out) {
    *out = NULL;
    char *text = NULL;
    int rc = meta_text(s, "tokenizer_config.json", &text);
    if (rc) return rc;
    hj_doc d;
    rc = parse_object(text, "tokenizer_config.json", &d);
    vt_free(text);
    if (rc) return rc;
    uint32_t t = hj_get(&d, 1, "chat_template");
    const char *tmpl = NULL;
    if (t && d.v[t].type == HJ_STR) {
        tmpl = hj_str(&d, t);
    } else if (t && d.v[t].type == HJ_ARR) { /* [{"name": ..., "template": ...}]: "default" */
        for (uint32_t e = d.v[t].first; e && !tmpl; e = d.v[e].next) {
            uint32_t nm = hj_get(&d, e, "name"), tp = hj_get(&d, e, "template");
            if (nm && d.v[nm].type == HJ_STR && !strcmp(hj_str(&d, nm), "default") && tp &&
                d.v[tp].type == HJ_STR)
                tmpl = hj_str(&d, tp);
        }
    }
    if (tmpl && !(*out = vt_strdup(tmpl))) rc = vt_fail(-ENOMEM, "out of memory");
    if (!tmpl) rc = vt_fail(VT_ENOTFOUND, "tokenizer_config.json has no chat_template");
    hj_free(&d);
    return rc;
}

/* ---- tokenizer.json ------------------------------------------------------------------------- */

/* 1 if node @p n is a JSON true/false equal to @p want, or absent and @p dflt equals it. */
static int hj_bool_is(const hj_doc *d, uint32_t n, int want, int dflt) {
    if (!n) return dflt == want;
    return d->v[n].type == HJ_BOOL && (int)d->v[n].num == want;
}

/* The "type" string of object node @p n, or NULL. */
static const char *hj_type(const hj_doc *d, uint32_t n) {
    uint32_t ty = n && d->v[n].type == HJ_OBJ ? hj_get(d, n, "type") : 0;
    return ty && d->v[ty].type == HJ_STR ? d->arena + d->v[ty].str : NULL;
}

/* 1 if @p n is {"type": "ByteLevel", "add_prefix_space": false, "use_regex": @p regex} (absent
 * use_regex means true). */
static int is_bytelevel(const hj_doc *d, uint32_t n, int regex) {
    const char *t = hj_type(d, n);
    return t && !strcmp(t, "ByteLevel") && hj_bool_is(d, hj_get(d, n, "add_prefix_space"), 0, 0) &&
           hj_bool_is(d, hj_get(d, n, "use_regex"), regex, 1);
}

/* The Split regexes of Llama 3 and Qwen2 (tokenizer.json, after JSON unescaping). */
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The split of {"type": "Split", "pattern": {"Regex": R}, "behavior": "Isolated", "invert":
 * false} with R one of the two above; VT_TOK_PRE_UNSUPPORTED for any other. */
static enum vt_tok_pre split_pre(const hj_doc *d, uint32_t n) {
    const char *t = hj_type(d, n);
    uint32_t pat = t && !strcmp(t, "Split") ? hj_get(d, n, "pattern") : 0;
    uint32_t re = pat ? hj_get(d, pat, "Regex") : 0, beh = hj_get(d, n, "behavior");
    if (!re || d->v[re].type != HJ_STR || !beh || d->v[beh].type != HJ_STR ||
        strcmp(hj_str(d, beh), "Isolated") || !hj_bool_is(d, hj_get(d, n, "invert"), 0, 0))
        return VT_TOK_PRE_UNSUPPORTED;
    if (!strcmp(hj_str(d, re), llama3_regex)) return VT_TOK_PRE_LLAMA3;
    if (!strcmp(hj_str(d, re), qwen2_regex)) return VT_TOK_PRE_QWEN2;
    return VT_TOK_PRE_UNSUPPORTED;
}

/* The split of a tokenizer.json "pre_tokenizer": ByteLevel (GPT-2 pattern) alone,
 * Sequence[Digits(individual_digits: true), ByteLevel], or Sequence[Split(the Llama-3 or Qwen2
 * regex), ByteLevel(use_regex: false)]; anything else is not implemented. A description of it
 * goes to @p desc. */
static enum vt_tok_pre hf_pre(const hj_doc *d, uint32_t n, char *desc, size_t cap) {
    const char *t = hj_type(d, n);
    snprintf(desc, cap, "tokenizer.json pre_tokenizer %s", t ? t : "null");
    if (!t) return VT_TOK_PRE_UNSUPPORTED;
    if (is_bytelevel(d, n, 1)) return VT_TOK_PRE_GPT2;
    uint32_t list = hj_get(d, n, "pretokenizers");
    if (strcmp(t, "Sequence") || !list || d->v[list].type != HJ_ARR) return VT_TOK_PRE_UNSUPPORTED;
    size_t k = strlen(desc);
    for (uint32_t c = d->v[list].first; c && k < cap; c = d->v[c].next) {
        const char *ct = hj_type(d, c);
        k += (size_t)snprintf(desc + k, cap - k, "%s%s", c == d->v[list].first ? " [" : ", ",
                              ct ? ct : "?");
    }
    if (k < cap) snprintf(desc + k, cap - k, "]");
    uint32_t a = d->v[list].first, b = a ? d->v[a].next : 0;
    if (d->v[list].count != 2) return VT_TOK_PRE_UNSUPPORTED;
    const char *at = hj_type(d, a);
    if (at && !strcmp(at, "Digits") && hj_bool_is(d, hj_get(d, a, "individual_digits"), 1, 0) &&
        is_bytelevel(d, b, 1))
        return VT_TOK_PRE_DIGITS_GPT2;
    if (at && !strcmp(at, "Split") && is_bytelevel(d, b, 0)) {
        enum vt_tok_pre p = split_pre(d, a);
        k = strlen(desc);
        if (k < cap)
            snprintf(desc + k, cap - k, " (%s)",
                     p == VT_TOK_PRE_LLAMA3  ? "Llama-3 regex"
                     : p == VT_TOK_PRE_QWEN2 ? "Qwen2 regex"
                                             : "a regex not implemented here");
        return p;
    }
    return VT_TOK_PRE_UNSUPPORTED;
}

/* The split, after the normalizer: none, or NFC, which is not applied (as llama.cpp does not:
 * text already in NFC, as typed text nearly always is, encodes the same); any other normalizer
 * makes the split unsupported. */
static enum vt_tok_pre hf_split(const hj_doc *d, char *desc, size_t cap) {
    enum vt_tok_pre p = hf_pre(d, hj_get(d, 1, "pre_tokenizer"), desc, cap);
    uint32_t nz = hj_get(d, 1, "normalizer");
    const char *nt = hj_type(d, nz);
    if (!nz || d->v[nz].type == HJ_NULL) return p;
    size_t k = strlen(desc);
    if (k < cap) snprintf(desc + k, cap - k, ", normalizer %s", nt ? nt : "?");
    if (nt && !strcmp(nt, "NFC")) {
        k = strlen(desc);
        if (k < cap) snprintf(desc + k, cap - k, " (not applied)");
        return p;
    }
    return VT_TOK_PRE_UNSUPPORTED;
}

/* The string member @p key of node @p n equals @p want. */
static int hj_str_is(const hj_doc *d, uint32_t n, const char *key, const char *want) {
    uint32_t v = hj_get(d, n, key);
    return v && d->v[v].type == HJ_STR && !strcmp(hj_str(d, v), want);
}

/* Replace(" " -> "▁"), SentencePiece's spaces as tokenizer.json writes them. */
static int is_replace_space(const hj_doc *d, uint32_t n) {
    const char *t = hj_type(d, n);
    uint32_t pat = hj_get(d, n, "pattern");
    return t && !strcmp(t, "Replace") && hj_str_is(d, pat, "String", " ") &&
           hj_str_is(d, n, "content", "\u2581");
}

/* A tokenizer.json over SentencePiece pieces, as transformers converts Gemma's, Llama 2's and
 * Mistral's tokenizer.model: no pre_tokenizer and the normalizer Replace(" " -> "▁"), alone
 * (Gemma) or after Prepend("▁") in a Sequence (Llama 2); or no normalizer and a pre_tokenizer
 * Metaspace("▁", split false) (Mistral v0.3). Its vt_tok_create_spm_bpe space mode (0: none, 1:
 * every fragment, 2 / 3: Metaspace's "first" / "always"), or -1 when the file is not of this
 * kind. */
static int hf_spm_space(const hj_doc *d, char *desc, size_t cap) {
    uint32_t nz = hj_get(d, 1, "normalizer"), pt = hj_get(d, 1, "pre_tokenizer");
    const char *nt = hj_type(d, nz), *ptt = hj_type(d, pt);
    if (nt && !ptt) {
        int mode = -1;
        if (is_replace_space(d, nz)) mode = 0;
        uint32_t list = !strcmp(nt, "Sequence") ? hj_get(d, nz, "normalizers") : 0;
        if (list && d->v[list].type == HJ_ARR && d->v[list].count == 2) {
            uint32_t a = d->v[list].first, b = d->v[a].next;
            const char *at = hj_type(d, a);
            if (at && !strcmp(at, "Prepend") && hj_str_is(d, a, "prepend", "\u2581") &&
                is_replace_space(d, b))
                mode = 1;
        }
        if (mode >= 0)
            snprintf(desc, cap, "tokenizer.json SentencePiece BPE (normalizer %s%s)",
                     mode ? "Prepend(\u2581), " : "", "Replace(' ', \u2581)");
        return mode;
    }
    if (!nt && ptt && !strcmp(ptt, "Metaspace") && hj_str_is(d, pt, "replacement", "\u2581") &&
        hj_bool_is(d, hj_get(d, pt, "split"), 0, 1)) {
        uint32_t ps = hj_get(d, pt, "prepend_scheme");
        const char *scheme = ps && d->v[ps].type == HJ_STR ? hj_str(d, ps) : NULL;
        int mode = scheme ? (!strcmp(scheme, "always")  ? 3
                             : !strcmp(scheme, "first") ? 2
                             : !strcmp(scheme, "never") ? 0
                                                        : -1)
                   : hj_bool_is(d, hj_get(d, pt, "add_prefix_space"), 1, 1) ? 3
                                                                            : 0;
        if (mode >= 0)
            snprintf(desc, cap,
                     "tokenizer.json SentencePiece BPE (pre_tokenizer Metaspace, "
                     "prepend %s)",
                     mode == 3   ? "always"
                     : mode == 2 ? "first"
                                 : "never");
        return mode;
    }
    return -1;
}

/* The BOS that tokenizer.json's post_processor puts before a single sequence: a
 * TemplateProcessing (alone or inside a Sequence's processors, as Llama 3 has it) whose "single"
 * template starts with a SpecialToken before the sequence $A; its id from special_tokens (else
 * from the vocabulary). Anything after $A (an EOS a model appends) is not added: a prompt to be
 * continued should not end in one. -1: none (Qwen2's ByteLevel post-processor, or none). */
static int32_t hf_bos(const hj_doc *d, const vt_tok *tok) {
    uint32_t pp = hj_get(d, 1, "post_processor"), tp = 0;
    uint32_t ty = hj_get(d, pp, "type");
    if (!ty || d->v[ty].type != HJ_STR) return -1;
    if (!strcmp(hj_str(d, ty), "TemplateProcessing")) {
        tp = pp;
    } else if (!strcmp(hj_str(d, ty), "Sequence")) {
        uint32_t ps = hj_get(d, pp, "processors");
        for (uint32_t c = ps && d->v[ps].type == HJ_ARR ? d->v[ps].first : 0; c && !tp;
             c = d->v[c].next) {
            uint32_t t = hj_get(d, c, "type");
            if (t && d->v[t].type == HJ_STR && !strcmp(hj_str(d, t), "TemplateProcessing")) tp = c;
        }
    }
    uint32_t single = hj_get(d, tp, "single");
    if (!single || d->v[single].type != HJ_ARR || !d->v[single].count) return -1;
    uint32_t st = hj_get(d, d->v[single].first, "SpecialToken"), name = hj_get(d, st, "id");
    if (!name || d->v[name].type != HJ_STR) return -1;
    uint32_t spec = hj_get(d, hj_get(d, tp, "special_tokens"), hj_str(d, name));
    uint32_t ids = hj_get(d, spec, "ids");
    if (ids && d->v[ids].type == HJ_ARR && d->v[ids].count == 1) {
        uint32_t i = d->v[ids].first;
        double v = d->v[i].num;
        if (d->v[i].type == HJ_NUM && v >= 0 && v < vt_tok_n_tokens(tok) && v == floor(v))
            return (int32_t)v;
    }
    int32_t id;
    return vt_tok_lookup(tok, hj_str(d, name), &id) ? -1 : id;
}

int vt_hf_tokenizer_parse(const char *json, vt_tok **tok, char *pre_desc, size_t pre_cap) {
    hj_doc d;
    int rc = hj_parse(json, &d);
    if (rc) return vt_fail(rc, "tokenizer.json: %s", vt_last_error());
    const char **toks = NULL, **merges = NULL;
    int32_t *types = NULL;
    char *mbuf = NULL, *pbuf = NULL;
    uint32_t model = hj_get(&d, 1, "model"), vocab = hj_get(&d, model, "vocab"),
             mlist = hj_get(&d, model, "merges"), added = hj_get(&d, 1, "added_tokens"),
             type = hj_get(&d, model, "type");
    if (type && (d.v[type].type != HJ_STR || strcmp(hj_str(&d, type), "BPE"))) {
        rc = vt_fail(VT_EUNSUPPORTED, "tokenizer.json: model.type is not BPE");
        goto out;
    }
    if (!vocab || d.v[vocab].type != HJ_OBJ || !d.v[vocab].count) {
        rc = vt_fail(VT_EFORMAT, "tokenizer.json has no model.vocab object");
        goto out;
    }
    if (added && d.v[added].type != HJ_ARR) added = 0;
    /* the id range: vocab values and added_tokens ids */
    uint64_t n = 0;
    for (uint32_t c = d.v[vocab].first; c; c = d.v[c].next) {
        double id = d.v[c].num;
        if (d.v[c].type != HJ_NUM || id < 0 || id >= INT32_MAX || id != floor(id)) {
            rc = vt_fail(VT_EFORMAT, "tokenizer.json: vocab entry '%s' has no valid id",
                         d.arena + d.v[c].key);
            goto out;
        }
        if ((uint64_t)id + 1 > n) n = (uint64_t)id + 1;
    }
    for (uint32_t a = added ? d.v[added].first : 0; a; a = d.v[a].next) {
        uint32_t id = hj_get(&d, a, "id"), ct = hj_get(&d, a, "content");
        if (!id || d.v[id].type != HJ_NUM || d.v[id].num < 0 || d.v[id].num >= INT32_MAX || !ct ||
            d.v[ct].type != HJ_STR) {
            rc = vt_fail(VT_EFORMAT, "tokenizer.json: an added token lacks id or content");
            goto out;
        }
        if ((uint64_t)d.v[id].num + 1 > n) n = (uint64_t)d.v[id].num + 1;
    }
    /* ids are dense in real vocabularies; a few holes get placeholders below, but a stray huge
     * id must not make us allocate gigabytes of them */
    uint64_t entries = (uint64_t)d.v[vocab].count + (added ? d.v[added].count : 0);
    if (n > entries + 65536) {
        rc = vt_fail(VT_EFORMAT,
                     "tokenizer.json: token ids go up to %llu but there are only %llu tokens",
                     (unsigned long long)n - 1, (unsigned long long)entries);
        goto out;
    }
    toks = vt_calloc(n, sizeof *toks);
    types = vt_calloc(n, sizeof *types);
    pbuf = vt_malloc(n * 32);
    if (!toks || !types || !pbuf) {
        rc = vt_fail(-ENOMEM, "out of memory for the vocabulary");
        goto out;
    }
    char dbuf[256];
    char *desc = pre_desc ? pre_desc : dbuf;
    const size_t dcap = pre_desc ? pre_cap : sizeof dbuf;
    const int spm_space = hf_spm_space(&d, desc, dcap);
    for (uint32_t c = d.v[vocab].first; c; c = d.v[c].next) {
        uint32_t id = (uint32_t)d.v[c].num;
        const char *k = d.arena + d.v[c].key;
        toks[id] = k;
        /* SentencePiece's byte pieces serve byte_fallback only */
        types[id] = spm_space >= 0 && strlen(k) == 6 && !memcmp(k, "<0x", 3) && k[5] == '>' &&
                            isxdigit((unsigned char)k[3]) && isxdigit((unsigned char)k[4])
                        ? VT_TOK_TYPE_BYTE
                        : VT_TOK_TYPE_NORMAL;
    }
    for (uint32_t a = added ? d.v[added].first : 0; a; a = d.v[a].next) {
        uint32_t id = (uint32_t)d.v[hj_get(&d, a, "id")].num, sp = hj_get(&d, a, "special");
        toks[id] = hj_str(&d, hj_get(&d, a, "content"));
        types[id] = sp && d.v[sp].type == HJ_BOOL && d.v[sp].num ? VT_TOK_TYPE_CONTROL
                                                                 : VT_TOK_TYPE_USER_DEFINED;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!toks[i]) { /* a hole in the ids: a placeholder nothing encodes to */
            char *p = pbuf + i * 32;
            snprintf(p, 32, "<|vt_unused_%u|>", (unsigned)i);
            toks[i] = p;
            types[i] = VT_TOK_TYPE_UNUSED;
        }
    /* merges: "a b" strings, or [a, b] pairs joined with a space here */
    uint32_t nm = mlist && d.v[mlist].type == HJ_ARR ? d.v[mlist].count : 0;
    size_t mbytes = 0;
    for (uint32_t c = nm ? d.v[mlist].first : 0; c; c = d.v[c].next) {
        if (d.v[c].type == HJ_STR) continue;
        uint32_t a = d.v[c].first, b = a ? d.v[a].next : 0;
        if (d.v[c].type != HJ_ARR || d.v[c].count != 2 || d.v[a].type != HJ_STR ||
            d.v[b].type != HJ_STR) {
            rc = vt_fail(VT_EFORMAT, "tokenizer.json: a merge is neither \"a b\" nor [a, b]");
            goto out;
        }
        mbytes += d.v[a].len + d.v[b].len + 2;
    }
    merges = vt_calloc(nm ? nm : 1, sizeof *merges);
    mbuf = vt_malloc(mbytes + 1);
    if (!merges || !mbuf) {
        rc = vt_fail(-ENOMEM, "out of memory for the merges");
        goto out;
    }
    uint32_t r = 0;
    size_t mo = 0;
    for (uint32_t c = nm ? d.v[mlist].first : 0; c; c = d.v[c].next, r++) {
        if (d.v[c].type == HJ_STR) {
            merges[r] = hj_str(&d, c);
            continue;
        }
        uint32_t a = d.v[c].first, b = d.v[a].next;
        merges[r] = mbuf + mo;
        memcpy(mbuf + mo, hj_str(&d, a), d.v[a].len);
        mo += d.v[a].len;
        mbuf[mo++] = ' ';
        memcpy(mbuf + mo, hj_str(&d, b), d.v[b].len + 1);
        mo += d.v[b].len + 1;
    }
    if (n > INT32_MAX) {
        rc = vt_fail(VT_EFORMAT, "tokenizer.json: %llu tokens", (unsigned long long)n);
        goto out;
    }
    rc = spm_space >= 0
             ? vt_tok_create_spm_bpe(toks, (uint32_t)n, merges, nm, types, spm_space, tok)
             : vt_tok_create(toks, (uint32_t)n, merges, nm, types, tok);
    if (rc) {
        rc = vt_fail(rc, "tokenizer from tokenizer.json: %s",
                     *vt_tok_error() ? vt_tok_error() : vt_strerror(rc));
    } else {
        uint32_t im = hj_get(&d, model, "ignore_merges");
        if (spm_space < 0) vt_tok_set_pre(*tok, hf_split(&d, desc, dcap));
        vt_tok_set_ignore_merges(*tok, im && d.v[im].type == HJ_BOOL && d.v[im].num);
        vt_tok_set_bos(*tok, hf_bos(&d, *tok));
    }
out:
    vt_free(toks);
    vt_free(types);
    vt_free(merges);
    vt_free(mbuf);
    vt_free(pbuf);
    hj_free(&d);
    return rc;
}

int vt_hf_tokenizer_load(vt_store *s, vt_tok **tok, char *pre_desc, size_t pre_cap) {
    char *text = NULL;
    int rc = meta_text(s, "tokenizer.json", &text);
    if (rc) return rc;
    rc = vt_hf_tokenizer_parse(text, tok, pre_desc, pre_cap);
    vt_free(text);
    return rc;
}

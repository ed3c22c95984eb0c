/* Golden tests for the GGUF formats: packed bytes of q8_0/q4_0/q4_1 and dequantized values of
 * q4_0/q4_1/q8_0/q4_k/q6_k must equal, bit for bit, what the gguf Python package's numpy
 * re-implementation of ggml's reference code produced (golden_data.h, written by
 * golden_gen.py; see there). Both the _ref and the fast paths are checked, one row and one row
 * per block. */
#include "vt_test.h"
#include "vtstore/quant.h"

#include "golden_data.h"

static void check_quant(uint32_t fmt, const uint8_t *want, size_t want_len, const uint32_t *deq) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    const float *x = (const float *)golden_x;
    const uint64_t shapes[2][2] = {{1, GOLDEN_N}, {GOLDEN_N / 32, 32}};
    for (int s = 0; s < 2; s++) {
        uint64_t rows = shapes[s][0], cols = shapes[s][1];
        CHECKF(vt_quant_bytes(fmt, rows, cols) == want_len, "%s: %llu bytes, golden %zu", nb,
               (unsigned long long)vt_quant_bytes(fmt, rows, cols), want_len);
        uint8_t q[GOLDEN_N * 2];
        float y[GOLDEN_N];
        for (int fast = 0; fast < 2; fast++) {
            memset(q, 0xee, sizeof q);
            CHECK_RC(fast ? vt_quantize(fmt, NULL, x, rows, cols, q, 0)
                          : vt_quantize_ref(fmt, NULL, x, rows, cols, q));
            for (size_t i = 0; i < want_len; i++)
                if (q[i] != want[i]) {
                    CHECKF(0, "%s %s %llux%llu: byte %zu is 0x%02x, golden 0x%02x", nb,
                           fast ? "fast" : "ref", (unsigned long long)rows,
                           (unsigned long long)cols, i, q[i], want[i]);
                    break;
                }
            CHECK_RC(fast ? vt_dequantize(fmt, NULL, want, rows, cols, y, 0)
                          : vt_dequantize_ref(fmt, NULL, want, rows, cols, y));
            for (size_t i = 0; i < GOLDEN_N; i++) {
                uint32_t u;
                memcpy(&u, &y[i], 4);
                if (u != deq[i]) {
                    CHECKF(0, "%s %s: value %zu is %a, golden 0x%08x", nb, fast ? "fast" : "ref", i,
                           (double)y[i], deq[i]);
                    break;
                }
            }
        }
    }
}

static void check_deq(uint32_t fmt, const uint8_t *blocks, const uint32_t *deq, uint64_t n) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    float y[512];
    for (int fast = 0; fast < 2; fast++) {
        CHECK_RC(fast ? vt_dequantize(fmt, NULL, blocks, 1, n, y, 0)
                      : vt_dequantize_ref(fmt, NULL, blocks, 1, n, y));
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &y[i], 4);
            if (u != deq[i]) {
                CHECKF(0, "%s %s: value %llu is %a, golden 0x%08x", nb, fast ? "fast" : "ref",
                       (unsigned long long)i, (double)y[i], deq[i]);
                break;
            }
        }
    }
    /* read-only formats refuse to quantize */
    uint8_t q[512];
    CHECK(vt_quantize(fmt, NULL, y, 1, 256, q, 1) == VT_EUNSUPPORTED);
    CHECK(vt_quantize_ref(fmt, NULL, y, 1, 256, q) == VT_EUNSUPPORTED);
}

int main(void) {
    check_quant(VT_FMT_Q8_0, golden_q8_0, sizeof golden_q8_0, golden_q8_0_deq);
    check_quant(VT_FMT_Q4_0, golden_q4_0, sizeof golden_q4_0, golden_q4_0_deq);
    check_quant(VT_FMT_Q4_1, golden_q4_1, sizeof golden_q4_1, golden_q4_1_deq);
    check_deq(VT_FMT_Q4_K, golden_q4_k, golden_q4_k_deq, 512);
    check_deq(VT_FMT_Q6_K, golden_q6_k, golden_q6_k_deq, 512);
    return vt_test_done("test_qa_golden");
}

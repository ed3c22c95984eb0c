// tests/install/cxx_api.cpp — the public headers from C++17, linked against the installed
// libvtstore.so (tests/install/test_install.sh builds it with -Wall -Wextra -Wpedantic -Werror):
// C linkage of the declarations, the static inline helpers of weight.h, the block layouts, and
// one real computation (q8_0 quantize, vt_gemv against vt_gemv_ref in f64).
#include <vtstore/vtstore.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

static_assert(sizeof(vt_block_q8_0) == 34, "q8_0 block");

int main() {
    const uint64_t rows = 16, cols = 128;
    std::vector<float> w(rows * cols), x(cols), y(rows), yref(rows);
    for (size_t i = 0; i < w.size(); i++) w[i] = static_cast<float>(std::sin(0.37 * i));
    for (size_t j = 0; j < x.size(); j++) x[j] = static_cast<float>(std::cos(0.11 * j));

    const vt_format_info *fi = vt_format_get(VT_FMT_Q8_0);
    if (!fi || std::strcmp(fi->name, "q8_0") != 0) {
        std::fprintf(stderr, "cxx_api: vt_format_get(VT_FMT_Q8_0) is wrong\n");
        return 1;
    }
    std::vector<unsigned char> q(vt_quant_bytes(VT_FMT_Q8_0, rows, cols));
    int rc = vt_quantize(VT_FMT_Q8_0, nullptr, w.data(), rows, cols, q.data(), 1);
    vt_weight h;
    vt_weight_host(&h, q.data(), VT_FMT_Q8_0, rows, cols, nullptr);
    vt_quant_params p = vt_weight_params(&h);
    if (!rc) rc = vt_gemv(&h, x.data(), y.data(), 1, nullptr);
    if (!rc) rc = vt_gemv_ref(&h, x.data(), yref.data(), 1, 1);
    if (rc) {
        std::fprintf(stderr, "cxx_api: %s (%s)\n", vt_strerror(rc), vt_last_error());
        return 1;
    }
    double err = 0, ref = 0;
    for (uint64_t r = 0; r < rows; r++) {
        err = std::fmax(err, std::fabs(static_cast<double>(y[r]) - yref[r]));
        ref = std::fmax(ref, std::fabs(static_cast<double>(yref[r])));
    }
    if (!(err <= 1e-4 * ref) || p.tensor_scale != 1.0f || p.channel_scale != nullptr) {
        std::fprintf(stderr, "cxx_api: vt_gemv is %g from vt_gemv_ref (max |y| %g)\n", err, ref);
        return 1;
    }
    vt_tier_config cfg{}; // the C structs are aggregates in C++ too
    cfg.ram_bytes = 1;
    std::printf("cxx_api: vtstore %s from C++: vt_gemv within %.2g of vt_gemv_ref; %s: ok\n",
                vt_version(), ref > 0 ? err / ref : err, vt_strerror(VT_ENOTFOUND));
    return cfg.ram_bytes == 1 ? 0 : 1;
}

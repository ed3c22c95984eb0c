/*
 * tokenizer.h - byte-level BPE tokenizer (GPT-2 family) for the model runner.
 *
 * Built from a model's own vocabulary as GGUF stores it: tokenizer.ggml.tokens
 * (token strings in GPT-2's byte-to-unicode alphabet), tokenizer.ggml.merges
 * ("left right" strings, rank = index) and tokenizer.ggml.token_type.  Encoding
 * follows Hugging Face `tokenizers` exactly for SmolLM2 (GGUF
 * tokenizer.ggml.pre = "smollm", shared by starcoder/refact/codeshell), and for
 * the Llama-3 and Qwen2 splits (vt_tok_set_pre):
 *
 *   1. CONTROL and USER_DEFINED tokens (e.g. <|im_start|>) are matched whole in the
 *      text, leftmost then longest, before anything else;
 *   2. every Unicode number (\p{N}) becomes a piece of its own (pre-tokenizer
 *      VT_TOK_PRE_DIGITS_GPT2, the default; VT_TOK_PRE_GPT2 skips this step);
 *   3. the remaining runs are split by the GPT-2 pattern
 *      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (VT_TOK_PRE_LLAMA3 / VT_TOK_PRE_QWEN2 replace steps 2 and 3 by one pattern,
 *      see enum vt_tok_pre), implemented by hand (no regex library;
 *      letter/number tables in tok_unicode.h, whitespace = the Unicode
 *      White_Space property; bytes that are not valid UTF-8 count as punctuation);
 *   4. each piece's bytes are merged by BPE, lowest merge rank first, leftmost
 *      first on ties (with ignore_merges, a piece that is itself a token is
 *      that token: vt_tok_set_ignore_merges).
 *
 * A SentencePiece vocabulary (GGUF tokenizer.ggml.model "llama": Llama 2, Mistral 7B)
 * decodes (vt_tok_create_spm) and, given its piece scores (vt_tok_set_spm_scores),
 * encodes as llama.cpp's SPM tokenizer does (special tokens as in step 1, then each
 * fragment merged by piece score, with byte fallback).
 *
 * Self-contained C11: no dependency on the rest of vtstore.  A vt_tok is
 * immutable once set up (vt_tok_create, then optionally vt_tok_set_pre and
 * vt_tok_set_ignore_merges), so one may then be shared by threads.
 *
 * Example:
 *     vt_tok *tok;
 *     int rc = vt_tok_create(tokens, n_tokens, merges, n_merges, types, &tok);
 *     int32_t ids[256]; uint32_t n;
 *     rc = vt_tok_encode(tok, "<|im_start|>user\nHi<|im_end|>\n", ids, 256, &n);
 *     char buf[64]; size_t len;
 *     rc = vt_tok_decode(tok, ids[0], buf, sizeof buf, &len);   // "<|im_start|>"
 *     vt_tok_destroy(tok);
 */
#ifndef VT_TOKENIZER_H
#define VT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** GGUF token types (tokenizer.ggml.token_type), as llama.cpp numbers them. */
enum vt_tok_type {
    VT_TOK_TYPE_NORMAL = 1,
    VT_TOK_TYPE_UNKNOWN = 2,
    VT_TOK_TYPE_CONTROL = 3,      /**< matched whole in text; decodes verbatim */
    VT_TOK_TYPE_USER_DEFINED = 4, /**< matched whole in text; decodes verbatim */
    VT_TOK_TYPE_UNUSED = 5,       /**< decodes to no bytes (llama.cpp; HF skips a missing id) */
    VT_TOK_TYPE_BYTE = 6          /**< SentencePiece "<0xNN>": decodes to the byte NN */
};

/** The pre-tokenizer: how text is split before BPE. */
enum vt_tok_pre {
    /** \p{N} one by one, then the GPT-2 pattern: GGUF tokenizer.ggml.pre "smollm"
     *  ("starcoder", "refact", "codeshell" name the same split); tokenizer.json
     *  Sequence[Digits(individual_digits), ByteLevel(use_regex)]. The default. */
    VT_TOK_PRE_DIGITS_GPT2 = 0,
    /** The GPT-2 pattern alone: GGUF "gpt-2"; tokenizer.json ByteLevel(use_regex). */
    VT_TOK_PRE_GPT2 = 1,
    /** A split this tokenizer does not implement: vt_tok_encode refuses with
     *  -ENOTSUP (decoding still works, so token ids in and text out do). */
    VT_TOK_PRE_UNSUPPORTED = 2,
    /** Llama 3's pattern, alone (no digit step):
     *  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
     *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
     *  GGUF "llama-bpe" ("llama3", "llama-v3"); tokenizer.json Sequence[Split(that
     *  regex, Isolated), ByteLevel(use_regex: false)]. */
    VT_TOK_PRE_LLAMA3 = 3,
    /** Qwen2's pattern: Llama 3's with \p{N} one at a time instead of {1,3}.
     *  GGUF "qwen2" ("deepseek-r1-qwen", "megrez"); tokenizer.json as above. */
    VT_TOK_PRE_QWEN2 = 4
};

/** A byte-level BPE tokenizer (read-only once its pre-tokenizer is set). */
typedef struct vt_tok vt_tok;

/**
 * Builds a tokenizer from a vocabulary and its merges.
 *
 * @param tokens      n_tokens NUL-terminated UTF-8 strings; token i has id i.
 *                    Normal tokens are in GPT-2's byte-to-unicode alphabet
 *                    ("Ġthe" is " the"); CONTROL / USER_DEFINED ones are raw text.
 * @param n_tokens    1 .. INT32_MAX.
 * @param merges      n_merges strings "left right" (split at the first space);
 *                    merges[r] has rank r, lower ranks apply first.  May be NULL
 *                    when n_merges is 0.  A repeated pair keeps its lowest rank.
 * @param token_types n_tokens vt_tok_type values, or NULL (then every token is
 *                    normal and no special token is matched in text).
 * @param out         receives the tokenizer; set to NULL on failure.
 * The inputs are copied; the caller may free them once this returns.
 * @return 0; -EINVAL for a NULL or empty argument, a merge without a space or
 *         whose parts or concatenation are not in the vocabulary; -ENOMEM.
 *         On failure vt_tok_error() says which token or merge was wrong.
 */
int vt_tok_create(const char *const *tokens, uint32_t n_tokens, const char *const *merges,
                  uint32_t n_merges, const int32_t *token_types, vt_tok **out);

/**
 * Builds a decode-only tokenizer from a SentencePiece vocabulary as GGUF stores it
 * (tokenizer.ggml.tokens of a tokenizer.ggml.model "llama"; no merges).  Tokens decode
 * as llama.cpp's token_to_piece does: a normal one is its text with each U+2581
 * ("▁", SentencePiece's space) a space, a BYTE one "<0xNN>" the byte NN, CONTROL,
 * USER_DEFINED and UNKNOWN ones their text verbatim ("</s>", "<unk>"), UNUSED ones
 * nothing.  vt_tok_encode refuses with -ENOTSUP until vt_tok_set_spm_scores is called.
 *
 * @param tokens, n_tokens, token_types  as for vt_tok_create (types NULL: all normal,
 *                    so "<0x0A>" is then text, as in llama.cpp).
 * @return 0; -EINVAL for a NULL or empty argument; -ENOMEM.
 */
int vt_tok_create_spm(const char *const *tokens, uint32_t n_tokens, const int32_t *token_types,
                      vt_tok **out);

/**
 * Builds an encoding tokenizer from a tokenizer.json BPE model over SentencePiece pieces
 * (Gemma's, Llama 2's and Mistral's Hugging Face files: "▁" for spaces, "<0xNN>" byte pieces
 * for byte_fallback, merges ranked).  Pieces decode as for vt_tok_create_spm.  Encoding: special
 * (CONTROL and USER_DEFINED) tokens are matched whole first; each remaining fragment, with a
 * space in front when @p space is 1 (every fragment: the normalizer's Prepend("▁")), 2 (the
 * fragment at the start of the text: Metaspace's prepend_scheme "first") or 3 (every fragment:
 * Metaspace's "always"), for 2 and 3 only where it does not start with a space, has its spaces as
 * U+2581 and is split into UTF-8 characters; a character that is no piece becomes its bytes'
 * "<0xNN>" tokens; then adjacent symbols are merged by @p merges ("a b", pieces as written, the
 * lowest rank first, leftmost on ties), as Hugging Face's BPE does.
 * @return as vt_tok_create (-EINVAL also for @p space outside 0..3).
 */
int vt_tok_create_spm_bpe(const char *const *tokens, uint32_t n_tokens, const char *const *merges,
                          uint32_t n_merges, const int32_t *token_types, int space, vt_tok **out);

/** Lets a SentencePiece tokenizer (vt_tok_create_spm) encode: @p scores has one score per
 *  token (GGUF tokenizer.ggml.scores), copied.  As llama.cpp's SPM tokenizer: CONTROL and
 *  USER_DEFINED tokens are matched whole in the text first; each remaining fragment gets a
 *  space in front when @p add_space_prefix (GGUF tokenizer.ggml.add_space_prefix, true by
 *  default) and it starts the text or follows a special token; spaces are pieces' U+2581;
 *  its UTF-8 characters are merged pairwise, the adjacent pair whose concatenation is a
 *  piece with the highest score first (the leftmost on ties); a character that ends up in
 *  no piece is encoded as its bytes' "<0xNN>" tokens (BYTE tokens are never matched as
 *  text).  Call it before the tokenizer is shared.  @return 0; -EINVAL (NULL, not a
 *  SentencePiece tokenizer); -ENOMEM. */
int vt_tok_set_spm_scores(vt_tok *tok, const float *scores, int add_space_prefix);

/** Why the last failed vt_tok_create() or vt_tok_encode() on this thread failed ("merge 7 'a
 *  b': token 'b' is not in the vocabulary", "byte 0xff at offset 1 of the text has no
 *  single-byte token in the vocabulary"); "" after a success or when there is nothing to add to
 *  the code. Points to thread-local storage, valid until the next vt_tok_create() or
 *  vt_tok_encode() on the thread. (The tokenizer does not link the store library, so it keeps its
 *  own detail, not vt_last_error().) */
const char *vt_tok_error(void);

/** Sets the pre-tokenizer (VT_TOK_PRE_DIGITS_GPT2 after vt_tok_create).  Call it
 *  before the tokenizer is shared.  @return 0; -EINVAL for NULL or an unknown value. */
int vt_tok_set_pre(vt_tok *tok, enum vt_tok_pre pre);

/** Sets ignore_merges (off after vt_tok_create): a pre-tokenized piece whose bytes
 *  are exactly a normal token is encoded as that token, without BPE (tokenizer.json
 *  model.ignore_merges; llama.cpp sets it for the Llama-3 GGUF names).  Call it
 *  before the tokenizer is shared.  @return 0; -EINVAL for NULL. */
int vt_tok_set_ignore_merges(vt_tok *tok, int on);

/** Sets the token that goes before an encoded prompt (BOS), or none with -1 (the
 *  default after vt_tok_create).  vt_tok_encode itself never adds it: the caller
 *  decides (vtstore run adds it to --prompt text, not to --tokens ids).  Set from
 *  GGUF tokenizer.ggml.add_bos_token (or llama.cpp's default for the tokenizer) or
 *  from tokenizer.json's TemplateProcessing post-processor.
 *  @return 0; -EINVAL for NULL or an id outside [-1, n_tokens). */
int vt_tok_set_bos(vt_tok *tok, int32_t id);

/** The token set by vt_tok_set_bos, -1 when none is added (also for NULL). */
int32_t vt_tok_bos(const vt_tok *tok);

/** The pre-tokenizer a GGUF tokenizer.ggml.pre value names (NULL: the key is
 *  absent, which llama.cpp reads as its "default" split: unsupported here). */
enum vt_tok_pre vt_tok_pre_from_gguf(const char *name);

/** Frees a tokenizer.  NULL is a no-op. */
void vt_tok_destroy(vt_tok *tok);

/**
 * Encodes UTF-8 text into token ids.  No BOS/EOS is added.
 *
 * @param tok   the tokenizer.
 * @param text  NUL-terminated text; invalid UTF-8 is accepted (byte-level BPE
 *              represents any bytes).
 * @param ids   receives up to cap ids; may be NULL when cap is 0.
 * @param cap   capacity of ids.
 * @param n_out receives the number of ids of the whole encoding, even when it
 *              exceeds cap (call with cap 0 to size a buffer).
 * @return 0; -ENOSPC when the encoding has more than cap ids (ids then holds the
 *         first cap of them); -EINVAL for NULL arguments or a byte that has no
 *         single-byte token in the vocabulary (vt_tok_error() then names the byte and
 *         its offset in text); -ENOTSUP when the pre-tokenizer is
 *         VT_TOK_PRE_UNSUPPORTED or the tokenizer is SentencePiece's
 *         (vt_tok_create_spm); -ENOMEM.
 */
int vt_tok_encode(const vt_tok *tok, const char *text, int32_t *ids, uint32_t cap, uint32_t *n_out);

/**
 * Writes the bytes of one token: normal tokens through the inverse of GPT-2's
 * byte-to-unicode map (a token may hold part of a UTF-8 sequence), CONTROL and
 * USER_DEFINED tokens verbatim (e.g. "<|im_end|>"), UNUSED tokens (a placeholder
 * for an id a tokenizer.json does not define, a GGUF padding token) as nothing, as
 * llama.cpp and Hugging Face decode them; SentencePiece pieces as vt_tok_create_spm
 * says.
 *
 * @param tok     the tokenizer.
 * @param id      0 .. n_tokens-1.
 * @param buf     receives the bytes, plus a terminating NUL when cap > length
 *                (the bytes themselves may contain NUL: use *len_out).
 * @param cap     capacity of buf; buf may be NULL when cap is 0.
 * @param len_out receives the token's length in bytes, also on -ENOSPC.
 * @return 0; -ENOSPC when cap < length (nothing written); -EINVAL for a NULL
 *         tok/len_out or an id out of range.
 */
int vt_tok_decode(const vt_tok *tok, int32_t id, char *buf, size_t cap, size_t *len_out);

/**
 * Finds the id of the token whose decoded bytes are exactly `piece` (e.g.
 * "<|im_end|>" or " the").  Where a normal and a special token decode alike, the
 * normal one wins.
 *
 * @return 0 with *id set; -ENOENT when no token matches; -EINVAL for NULLs.
 */
int vt_tok_lookup(const vt_tok *tok, const char *piece, int32_t *id);

/**
 * Finds the special (CONTROL / USER_DEFINED: matched whole in text) token whose
 * bytes are exactly `piece`, e.g. "<|im_start|>".
 *
 * @return 0 with *id set; -ENOENT when no special token matches; -EINVAL for NULLs.
 */
int vt_tok_find_special(const vt_tok *tok, const char *piece, int32_t *id);

/** The most ids vt_tok_find_eog finds: one per name of its list, and three FIM tokens. */
#define VT_TOK_MAX_EOG 25

/**
 * Finds the tokens llama.cpp ends generation at by their text (llama-vocab.cpp, load:
 * special_eog_ids): tokens named <|eot_id|>, <|im_end|>, <|end|>, <|return|>, <|call|>, <|flush|>,
 * <|calls|>, <end_of_turn>, <|endoftext|>, </s>, <|eom_id|>, <EOT>, _<EOT>, [EOT], [EOS],
 * <|end_of_text|>, <end_of_utterance>, <eos>, <turn|>, <|tool_response>, <｜end▁of▁sentence｜> or
 * [e~[, as in llama.cpp without <|end|> when <|call|> (or <|calls|>) comes with <|return|> or
 * <|flush|> (gpt-oss, Solar Open) and without </s> when there is a <|tool_response> (Gemma 4); and
 * the first token found of each of llama.cpp's FIM pad (<|fim_pad|>, <fim-pad>, <fim_pad>, <PAD>,
 * [PAD]), repository (<|fim_repo|>, <|repo_name|>, <fim-repo>, <REPO>, <reponame>) and file
 * separator (<|file_sep|>) names.  Of tokens with the same text, the last.
 *
 * As in llama.cpp, the token's type does not matter: llama.cpp takes a NORMAL or USER_DEFINED
 * token with one of these texts too (warning that its type is "probably a bug in the model" and
 * making it CONTROL), so a model stops where it would stop in llama.cpp. A tokenizer.json token
 * counts whether it is an added token (special or not) or in the model's vocabulary.
 *
 * @param ids   receives the ids, ascending, without repeats (room for VT_TOK_MAX_EOG).
 * @param n_out receives how many (0 .. VT_TOK_MAX_EOG).
 * @return 0; -EINVAL for NULLs.
 */
int vt_tok_find_eog(const vt_tok *tok, int32_t ids[VT_TOK_MAX_EOG], uint32_t *n_out);

/** Number of tokens in the vocabulary (0 for NULL). */
uint32_t vt_tok_n_tokens(const vt_tok *tok);

#ifdef __cplusplus
}
#endif

#endif /* VT_TOKENIZER_H */

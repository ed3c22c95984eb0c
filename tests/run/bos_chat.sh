#!/bin/sh
# BOS and --chat templates on the SmolLM2 GGUF with its metadata rewritten (gguf_edit.py; the
# tensors are unchanged), against the `tokenizers` oracle (tests/model/tok_ref.py):
#  - add_bos_token true: --prompt ids are the oracle's with a TemplateProcessing BOS; --tokens
#    ids are used as given; SmolLM2's own false adds none;
#  - the key absent: llama.cpp's defaults, no BOS for the smollm split, BOS for llama3;
#  - Llama 3's chat template (tokens 3-6 renamed to Llama 3's specials, its chat_template, BOS
#    3): --chat encodes the template text (message trimmed) with one BOS, not two; chosen from
#    the vocabulary too when the store has no chat_template;
#  - Llama 2's [INST] templates and Gemma's: --chat encodes what jinja2 renders from them;
#  - tokenizer.ggml.eot_token_id ends generation; other chat templates are refused (exit 1).
set -eu
PY_MODULES="numpy gguf tokenizers jinja2"
. "$(dirname "$0")/common.sh"
need_store
V=$VT_BIN
E="$PY $HERE/gguf_edit.py"
REF="$PY $ROOT/tests/model/tok_ref.py"
ids() { "$PY" -c "import json,sys; print(','.join(map(str, json.load(sys.stdin)['$1'])))"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
# render TEMPLATE SYSTEM MSG [BOS]: the text jinja2 renders as transformers' apply_chat_template
# does (trim_blocks, lstrip_blocks; add_generation_prompt; strftime_now), a system message first unless
# SYSTEM is "-"; printed with an x after it (strip it: $(...) drops trailing newlines)
render() {
    "$PY" -c "import datetime, jinja2, sys
t = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(sys.argv[1])
m = ([] if sys.argv[2] == '-' else [{'role': 'system', 'content': sys.argv[2]}])
m.append({'role': 'user', 'content': sys.argv[3]})
print(t.render(messages=m, add_generation_prompt=True, bos_token=sys.argv[4], eos_token='</s>',
               strftime_now=lambda f: datetime.datetime.now().strftime(f)) + 'x', end='')" \
        "$1" "$2" "$3" "${4:-}"
}
# chat_ids NAME SYSTEM MSG: the prompt ids of --chat on store bc-NAME, with --system SYSTEM unless "-"
chat_ids() {
    if [ "$2" = - ]; then
        "$V" run "$TMP/bc-$1.vts" --chat --prompt "$3" --max-new 1 --json | ids prompt_ids
    else
        "$V" run "$TMP/bc-$1.vts" --chat --system "$2" --prompt "$3" --max-new 1 --json |
            ids prompt_ids
    fi
}
make() { # NAME EDITS... : an edited copy of the model, imported
    n=$1
    shift
    $E "$MODEL" "$TMP/bc-$n.gguf" "$@"
    "$V" import "$TMP/bc-$n.gguf" "$TMP/bc-$n.vts" -q >/dev/null
    rm -f "$TMP/bc-$n.gguf"
}
trap 'rm -rf "$TMP"/bc-*' EXIT
P="Hello world, 123 It's"

# SmolLM2 as it is (add_bos_token false): no BOS
got=$("$V" run "$STORE" --prompt "$P" --max-new 1 --json | ids prompt_ids)
want=$($REF "$MODEL" --encode "$P")
[ "$got" = "$want" ] || fail "SmolLM2 '$P': $got, oracle $want"
echo "add_bos_token false: $got (no BOS)"

# add_bos_token true: the BOS (<|im_start|>, id 1) first, as the oracle's post-processor does
make bos --bool tokenizer.ggml.add_bos_token=1
got=$("$V" run "$TMP/bc-bos.vts" --prompt "$P" --max-new 1 --json | ids prompt_ids)
want=$($REF "$MODEL" --encode "$P" --bos "<|im_start|>")
[ "$got" = "$want" ] || fail "add_bos_token true: $got, oracle $want"
echo "add_bos_token true: $got"
got=$("$V" run "$TMP/bc-bos.vts" --tokens 19556,905 --max-new 1 --json | ids prompt_ids)
[ "$got" = "19556,905" ] || fail "--tokens changed to $got"
# a prompt that starts with the BOS text gets no second one
got=$("$V" run "$TMP/bc-bos.vts" --prompt "<|im_start|>$P" --max-new 1 --json | ids prompt_ids)
[ "$got" = "$want" ] || fail "BOS text + add_bos: $got, expected $want"

# no add_bos_token key: llama.cpp's default for the pre-tokenizer
make nokey --del tokenizer.ggml.add_bos_token
got=$("$V" run "$TMP/bc-nokey.vts" --prompt "$P" --max-new 1 --json | ids prompt_ids)
want=$($REF "$MODEL" --encode "$P")
[ "$got" = "$want" ] || fail "no key, smollm: $got, oracle $want"
make nokey3 --del tokenizer.ggml.add_bos_token --str tokenizer.ggml.pre=llama3
got=$("$V" run "$TMP/bc-nokey3.vts" --prompt "$P" --max-new 1 --json | ids prompt_ids)
want=$($REF "$MODEL" --encode "$P" --pre llama-bpe --bos "<|im_start|>")
[ "$got" = "$want" ] || fail "no key, llama3: $got, oracle $want"
echo "no add_bos_token: smollm no BOS, llama3 BOS: $got"

# Llama 3's template
L3="--token 3=<|begin_of_text|> --token 4=<|start_header_id|> --token 5=<|end_header_id|>
    --token 6=<|eot_id|> --u32 tokenizer.ggml.bos_token_id=3 --bool tokenizer.ggml.add_bos_token=1
    --str tokenizer.ggml.pre=llama3"
TMPL="{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>

' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}"
# shellcheck disable=SC2086
make l3 $L3 --str "tokenizer.chat_template=$TMPL"
# shellcheck disable=SC2086
make l3v $L3 --del tokenizer.chat_template
$E "$MODEL" "$TMP/bc-l3.gguf" $L3 # the oracle's vocabulary
MSG=" What is the capital of France?
"
TEXT="<|begin_of_text|><|start_header_id|>user<|end_header_id|>

What is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

"
want=$($REF "$TMP/bc-l3.gguf" --pre llama-bpe --encode "$TEXT")
case "$want" in 3,4,*) ;; *) fail "oracle: the template text encodes to $want" ;; esac
for s in l3 l3v; do
    got=$(chat_ids $s - "$MSG")
    [ "$got" = "$want" ] || fail "Llama 3 chat ($s): $got, oracle $want"
done
echo "Llama 3 chat template (from chat_template and from the vocabulary): $want"
# a system message: its own header, trimmed (the template's | trim), from the template and from
# the vocabulary alike
SYS=" Answer briefly.
"
text=$(render "$TMPL" "$SYS" "$MSG" "<|begin_of_text|>")
want=$($REF "$TMP/bc-l3.gguf" --pre llama-bpe --encode "${text%x}")
for s in l3 l3v; do
    got=$(chat_ids $s "$SYS" "$MSG")
    [ "$got" = "$want" ] || fail "Llama 3 chat --system ($s): $got, oracle $want"
done
echo "Llama 3 chat template with --system: $want"
# Unicode whitespace (U+3000, U+00A0, U+2028, \x1c) trimmed as Jinja's trim (Python's strip) does
UMSG=$(printf '\343\200\200 What is 2+2?\302\240\342\200\250\034')
USYS=$(printf '\302\240Be brief.\343\200\200')
text=$(render "$TMPL" "$USYS" "$UMSG" "<|begin_of_text|>")
want=$($REF "$TMP/bc-l3.gguf" --pre llama-bpe --encode "${text%x}")
got=$(chat_ids l3 "$USYS" "$UMSG")
[ "$got" = "$want" ] || fail "Llama 3 chat, Unicode whitespace: $got, oracle $want"
# Llama 3.1's and 3.2's templates: a system turn always, "Cutting Knowledge Date: December
# 2023\nToday Date: " + date_string + "\n\n" before the system message (3.1: the default
# "26 Jul 2024"; 3.2: strftime_now, today)
L31H="{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
DATE
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = \"\" %}
{%- endif %}
{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- \"Environment: ipython\\n\" }}
{%- endif %}
{{- \"Cutting Knowledge Date: December 2023\\n\" }}
{{- \"Today Date: \" + date_string + \"\\n\\n\" }}
{{- system_message }}
{{- \"<|eot_id|>\" }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}"
D31='{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}'
D32='{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}'
for v in 31 32; do
    if [ $v = 31 ]; then D=$D31; else D=$D32; fi
    T=$("$PY" -c "import sys; print(sys.argv[1].replace('DATE', sys.argv[2]), end='')" "$L31H" "$D")
    # shellcheck disable=SC2086
    make l$v $L3 --str "tokenizer.chat_template=$T"
    for sys_msg in - "$SYS"; do
        text=$(render "$T" "$sys_msg" "$MSG" "<|begin_of_text|>")
        case "$text" in *"Today Date: "*) ;; *) fail "the Llama $v template rendered no date" ;; esac
        want=$($REF "$TMP/bc-l3.gguf" --pre llama-bpe --encode "${text%x}")
        got=$(chat_ids l$v "$sys_msg" "$MSG")
        [ "$got" = "$want" ] || fail "Llama $v chat, system '$sys_msg': $got, oracle $want"
    done
done
echo "Llama 3.1 and 3.2 templates (the dated system turn, with and without --system): as jinja2 renders them"

# tokenizer.ggml.eot_token_id ends generation: the chat prompt's first greedy token is 504
make eot --u32 tokenizer.ggml.eot_token_id=504
got=$("$V" run "$TMP/bc-eot.vts" --tokens "$IDS" --max-new 4 --json | ids generated_ids)
[ "$got" = "504" ] || fail "eot_token_id 504: generated $got"
got=$("$V" run "$STORE" --tokens "$IDS" --max-new 4 --json | ids generated_ids)
[ "$got" != "504" ] || fail "without eot_token_id generation stopped too"
echo "eot_token_id stops generation (504); without it: $got"

# Llama 2's [INST] templates (llama.cpp's llama2 family): --chat encodes the text jinja2
# renders from the template (its bos_token left to the tokenizer, as llama.cpp does), by the
# oracle: Llama 2 chat's (content.strip(): the message trimmed) and Mistral 7B Instruct
# v0.1's (kept as is)
L2S="{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
L2M="{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% endif %}{% endfor %}"
for v in s m; do
    if [ $v = s ]; then T=$L2S; else T=$L2M; fi
    make l2$v --str "tokenizer.chat_template=$T"
    text=$(render "$T" - "$MSG")
    want=$($REF "$MODEL" --encode "${text%x}")
    got=$(chat_ids l2$v - "$MSG")
    [ "$got" = "$want" ] || fail "Llama 2 [INST] chat ($v): $got, oracle $want"
done
echo "Llama 2 [INST] chat templates (stripped and kept): as jinja2 renders them"
# a system message: Llama 2 chat's <<SYS>> block, the content stripped as a whole (a message of
# spaces leaves "<<SYS>>...<</SYS>>" alone); Mistral v0.1's template has no place for one
for m in "$MSG" "   "; do
    text=$(render "$L2S" "$SYS" "$m")
    want=$($REF "$MODEL" --encode "${text%x}")
    got=$(chat_ids l2s "$SYS" "$m")
    [ "$got" = "$want" ] || fail "Llama 2 chat --system, message '$m': $got, oracle $want"
done
if "$V" run "$TMP/bc-l2m.vts" --chat --system "$SYS" --prompt "$MSG" --max-new 1 \
    >/dev/null 2>"$TMP/bc-err"; then
    fail "--system with a template without <<SYS>> was not refused"
fi
grep -q "no place for a system message" "$TMP/bc-err" || fail "message: $(cat "$TMP/bc-err")"
echo "Llama 2 chat with --system: as jinja2 renders it; refused without <<SYS>>"

# Gemma's template (tokens 3, 4 renamed to <start_of_turn>, <end_of_turn>): --chat encodes what
# jinja2 renders from it (the message trimmed), also chosen from the vocabulary alone
GM="{{ bos_token }}{%- for message in messages -%}{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
make gm --token 3="<start_of_turn>" --token 4="<end_of_turn>" --str "tokenizer.chat_template=$GM"
make gmv --token 3="<start_of_turn>" --token 4="<end_of_turn>" --token 1="<x1>" --token 2="<x2>" \
    --del tokenizer.chat_template # without ChatML's tokens, which the vocabulary test prefers
$E "$MODEL" "$TMP/bc-gm.gguf" --token 3="<start_of_turn>" --token 4="<end_of_turn>"
text=$(render "$GM" - "$MSG")
want=$($REF "$TMP/bc-gm.gguf" --encode "${text%x}")
case "$want" in 3,*) ;; *) fail "oracle: the Gemma template text encodes to $want" ;; esac
for s in gm gmv; do
    got=$(chat_ids $s - "$MSG")
    [ "$got" = "$want" ] || fail "Gemma chat ($s): $got, oracle $want"
done
echo "Gemma chat template (from chat_template and from the vocabulary): $want"
# Gemma 3's template puts a system message before the first user message (first_user_prefix, the
# message as is, then a blank line); Gemma 2's (above) and the vocabulary alone take none
GM3="{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = \"\" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
make gm3 --token 3="<start_of_turn>" --token 4="<end_of_turn>" --str "tokenizer.chat_template=$GM3"
for sys_msg in - "$SYS"; do
    text=$(render "$GM3" "$sys_msg" "$MSG")
    want=$($REF "$TMP/bc-gm.gguf" --encode "${text%x}")
    got=$(chat_ids gm3 "$sys_msg" "$MSG")
    [ "$got" = "$want" ] || fail "Gemma 3 chat, system '$sys_msg': $got, oracle $want"
done
for s in gm gmv; do
    if "$V" run "$TMP/bc-$s.vts" --chat --system "$SYS" --prompt "$MSG" --max-new 1 \
        >/dev/null 2>"$TMP/bc-err"; then
        fail "Gemma ($s) without first_user_prefix took --system"
    fi
    grep -q "first_user_prefix" "$TMP/bc-err" || fail "message: $(cat "$TMP/bc-err")"
done
echo "Gemma 3 chat with and without --system: as jinja2 renders it; Gemma 2's refuses --system"

# ChatML templates with a default system message, Qwen2.5's form (a tools branch, the newline
# as the Jinja escape \n) and one whose default has an escaped quote: --chat writes the default
# when no --system is given, as jinja2 renders it; --system replaces it; Qwen3's form (no
# default) writes none
QW="{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == 'user') or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"
QQ="{% for m in messages %}{% if loop.first and m['role'] != 'system' %}{{ '<|im_start|>system\nYou\\'re \\\"brief\\\".<|im_end|>\n' }}{% endif %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
Q3="{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
for v in qw qq q3; do
    case $v in qw) T=$QW ;; qq) T=$QQ ;; *) T=$Q3 ;; esac
    make $v --str "tokenizer.chat_template=$T"
    for sys_msg in - "$SYS"; do
        text=$(render "$T" "$sys_msg" "$MSG")
        want=$($REF "$MODEL" --encode "${text%x}")
        got=$(chat_ids $v "$sys_msg" "$MSG")
        [ "$got" = "$want" ] || fail "ChatML ($v), system '$sys_msg': $got, oracle $want"
    done
done
echo "ChatML default system messages (Qwen2.5's form, an escaped quote, none) and --system: as jinja2 renders them"

# other chat templates are refused: a Mistral [INST] variant (v7), and Phi-3's
make other --str "tokenizer.chat_template={% for m in messages %}[SYSTEM_PROMPT][INST] {{ m['content'] }}[/INST]{% endfor %}"
if "$V" run "$TMP/bc-other.vts" --chat --prompt hi --max-new 1 >/dev/null 2>"$TMP/bc-err"; then
    fail "a Mistral v7 template was not refused"
fi
grep -q "Mistral \[INST\] variant" "$TMP/bc-err" || fail "message: $(cat "$TMP/bc-err")"
make other2 --str "tokenizer.chat_template={% for m in messages %}<|{{ m['role'] }}|>
{{ m['content'] }}<|end|>
{% endfor %}"
if "$V" run "$TMP/bc-other2.vts" --chat --prompt hi --max-new 1 >/dev/null 2>"$TMP/bc-err"; then
    fail "a Phi-3 template was not refused"
fi
grep -q "none of ChatML" "$TMP/bc-err" || fail "message: $(cat "$TMP/bc-err")"
echo "other templates refused: $(cat "$TMP/bc-err")"

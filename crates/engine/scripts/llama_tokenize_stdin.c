// Tokenizes stdin with llama.cpp's llama_tokenize and prints the ids, space-separated.
// usage: llama_tokenize_stdin MODEL.gguf ADD_SPECIAL(0|1) PARSE_SPECIAL(0|1)
// Built and run by gen_tokenizer_fixture.py against an existing llama.cpp build.
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) level; (void) text; (void) user;
}

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL ADD_SPECIAL PARSE_SPECIAL\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);

    size_t cap = 1 << 16, len = 0;
    char * text = malloc(cap);
    size_t got;
    while ((got = fread(text + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            text = realloc(text, cap);
        }
    }
    int32_t n_max = (int32_t) len + 16;
    llama_token * ids = malloc(sizeof(llama_token) * n_max);
    int32_t n = llama_tokenize(vocab, text, (int32_t) len, ids, n_max, atoi(argv[2]) != 0, atoi(argv[3]) != 0);
    if (n < 0) {
        fprintf(stderr, "tokenize failed: %d\n", n);
        return 1;
    }
    for (int32_t i = 0; i < n; i++) {
        printf(i ? " %d" : "%d", ids[i]);
    }
    printf("\n");
    llama_model_free(model);
    return 0;
}

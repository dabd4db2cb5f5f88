/* jieba_dict_data.c - builds jieba 0.42.1's dict.txt (tokenizer/data/jieba_dict.txt, MIT,
 * see tokenizer/data/LICENSE.jieba) into the library, so that the T5 PEGASUS tokenizer
 * finds its default dictionary with no file to install or configure (binaries, containers).
 * The bytes are read-only data shared by every process mapping the binary.
 * Built with the assembler's .incbin, relative to the repository root where make runs. */
#include <stddef.h>

#include "tok_dev.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".hidden t5s_jieba_dict_begin\n"
        ".hidden t5s_jieba_dict_end\n"
        ".globl t5s_jieba_dict_begin\n"
        ".globl t5s_jieba_dict_end\n"
        "t5s_jieba_dict_begin:\n"
        ".incbin \"tokenizer/data/jieba_dict.txt\"\n"
        "t5s_jieba_dict_end:\n"
        ".byte 0\n"
        ".popsection\n");

extern const char t5s_jieba_dict_begin[];
extern const char t5s_jieba_dict_end[];

const char *wp_jieba_default_dict(size_t *len) {
    *len = (size_t)(t5s_jieba_dict_end - t5s_jieba_dict_begin);
    return t5s_jieba_dict_begin;
}

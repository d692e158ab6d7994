/*
 * The image identity the translation-database unit tests write and expect
 * (test_tcdb, test_tcdb_io, test_tcdb_pack): one definition, so a change of
 * what identifies an image is made once.
 */
#ifndef BT_TESTS_UNIT_TCDB_FIXTURE_H
#define BT_TESTS_UNIT_TCDB_FIXTURE_H

#include "db/tcdb.h"

static const struct tcdb_image test_image = {
    .path = "kernel.elf",
    .build_id = "00112233445566778899aabbccddeeff00112233",
    .sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    .entry = 0xffffffff81000000ull,
    .arch = "x86_64",
    .build_id_va = 0xffffffff82435f50ull,
    .banner = "Linux version 6.1.0-test (b@h) (gcc) #1\n",
};

#endif

# fast_float's table of 128-bit truncated/rounded powers of five, q in [-342, 308]
out = []
for q in range(-342, 0):
    power5 = 5 ** -q
    z = 0
    while (1 << z) < power5:
        z += 1
    if q >= -27:
        b = z + 127
        c = 2 ** b // power5 + 1
    else:
        b = 2 * z + 2 * 64
        c = 2 ** b // power5 + 1
        while c >= (1 << 128):
            c //= 2
    out.append(c)
for q in range(0, 309):
    power5 = 5 ** q
    while power5 < (1 << 127):
        power5 *= 2
    while power5 >= (1 << 128):
        power5 //= 2
    out.append(power5)
print("/* pow5_table.h - generated (the table of fast_float, github.com/fastfloat/fast_float, script/table_generation.py):")
print(" * for q in [-342, 308], the 128 most significant bits of 5^q normalised so the top bit is set")
print(" * (q < 0: 2^b / 5^-q + 1, truncated to 128 bits), as {high 64 bits, low 64 bits}. Used by the")
print(" * Eisel-Lemire step of numparse.c. */")
print("#define RF_POW5_MIN (-342)")
print("#define RF_POW5_MAX 308")
print("static const uint64_t RF_POW5_128[%d] = {" % (2 * len(out)))
for c in out:
    print("    0x%016xULL, 0x%016xULL," % (c >> 64, c & ((1 << 64) - 1)))
print("};")

/* Test-only shim: Wine 8 (Debian 12) lacks bcryptprimitives.dll, from which Rust std >= 1.78
   imports ProcessPrng. run-foreign puts it into its throwaway Wine prefix only. */
typedef int BOOL;
typedef unsigned char BOOLEAN;
typedef unsigned long ULONG;
typedef unsigned long long SIZE_T;
__declspec(dllimport) BOOLEAN __stdcall SystemFunction036(void *buffer, ULONG length);
BOOL __stdcall DllMainCRTStartup(void *h, ULONG reason, void *reserved) {
    (void)h; (void)reason; (void)reserved;
    return 1;
}
__declspec(dllexport) BOOL __stdcall ProcessPrng(unsigned char *data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffffu ? 0x7fffffffu : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return 0;
        data += chunk;
        len -= chunk;
    }
    return 1;
}

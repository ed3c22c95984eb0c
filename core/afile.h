/* core/afile.h — an output file that appears whole or not at all (exports, .npy outputs).
 * Internal to libvtstore: not exported by libvtstore.so. */
#ifndef VT_AFILE_H
#define VT_AFILE_H

/** Written unnamed (O_TMPFILE) in the target's directory, so a process killed while writing
 *  leaves nothing behind; where the file system (or a missing /proc) rules that out, under
 *  PATH.tmp.PID created exclusively, never through a symlink or over another writer's file.
 *  vt_afile_close gives it a temporary name if it has none and renames it over PATH after
 *  fdatasync. VT_AFILE_NAMED=1 in the environment takes the named way only (for tests). */
typedef struct vt_afile {
    int fd;
    int unnamed; /* O_TMPFILE: no name until vt_afile_close */
    const char *path;
    char tmp[4200];
} vt_afile;

/** Open @p path (kept by pointer) for writing. Errors: -errno, -ENAMETOOLONG; the message
 *  names the path. */
int vt_afile_open(vt_afile *a, const char *path);
/** When @p rc is 0: sync, name and rename into place (returns the result); otherwise, or when
 *  that fails, drop the file. The message of an error of its own names the path. */
int vt_afile_close(vt_afile *a, int rc);

#endif

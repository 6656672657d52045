#ifndef RBOX_FFI_H
#define RBOX_FFI_H

/* The C ABI of the plugin's Rust core (src/ffi.rs). The C layer holds Dovecot's
   structures; Rust holds everything Ceph. Rules:

   - Every call blocks until its Ceph work is done or failed; each Ceph op is bounded by
     the configured timeouts, so no call hangs forever.
   - Pointers passed in are borrowed for the duration of the call only.
   - Memory Rust hands out (error strings, bodies) is freed only with the matching
     rbox_rs_*_free function, never with Dovecot's pools or free().
   - No Rust panic crosses this boundary: a panic becomes RBOX_RS_ERR_BUG. */

#include <stddef.h>
#include <stdint.h>

enum rbox_rs_status {
	RBOX_RS_OK = 0,
	/* Ceph unreachable, timed out, or another transient backend failure. */
	RBOX_RS_ERR_TEMP = -1,
	/* The mail object is gone (expunged behind our back) or zero-byte. */
	RBOX_RS_ERR_NOTFOUND = -2,
	/* The mail exceeds what the OSDs accept. */
	RBOX_RS_ERR_TOO_LARGE = -3,
	/* The pool is full (quota or full OSDs). */
	RBOX_RS_ERR_NOSPACE = -4,
	/* Garbage in RADOS (undecodable xattrs or index). */
	RBOX_RS_ERR_CORRUPT = -5,
	/* Invalid input or settings. */
	RBOX_RS_ERR_PARAMS = -6,
	/* cephx refused (wrong key, missing caps). */
	RBOX_RS_ERR_PERM = -7,
	/* A bug in the plugin (a caught panic). */
	RBOX_RS_ERR_BUG = -8,
};

/* One plugin {} setting. */
struct rbox_rs_setting {
	const char *key;
	const char *value;
};

/* A connected user: its Ceph namespace in the process-wide connection. */
struct rbox_rs_user;

struct rbox_rs_mailbox {
	unsigned char guid[16];
	const char *name;
};

struct rbox_rs_save_mail {
	uint32_t uid;
	/* in: the object id Dovecot generated; out: the one used (differs only after an
	   object id collision). */
	unsigned char oid[16];
	/* The mail GUID: 16 bytes, or a text GUID (dsync) when guid_text != NULL. */
	unsigned char guid[16];
	const char *guid_text;
	/* The body, or for a copy (data == NULL) the source object, read and copied with
	   its metadata in RADOS (M and U become the destination's). */
	const unsigned char *data;
	size_t size;
	const unsigned char *src_oid;
	int64_t received_date;
	int64_t save_date;
	uint8_t flags;
	const char *const *keywords;
	size_t keyword_count;
	const char *pop3_uidl; /* NULL when unset */
	uint32_t pop3_order;   /* 0 when unset */
};

struct rbox_rs_body {
	const unsigned char *data;
	size_t size;
	void *owner;
};

struct rbox_rs_expunge {
	uint32_t uid;
	unsigned char oid[16];
};

struct rbox_rs_flags {
	uint32_t uid;
	uint8_t flags;
	const char *const *keywords;
	size_t keyword_count;
};

/* One mail object found in RADOS for a mailbox (force-resync). */
struct rbox_rs_found_mail {
	unsigned char oid[16];
	uint32_t uid; /* 0 when the object has no valid U */
	const char *guid; /* G as text */
	int64_t received_date;
	int64_t save_date;
	uint64_t size;
};
typedef void rbox_rs_found_cb(void *context, const struct rbox_rs_found_mail *mail);

/* Open (or reuse) the process's Ceph connection for these settings and return the
   user's handle. Creates rbox_cfg when missing, like librmb. */
int rbox_rs_user_open(const struct rbox_rs_setting *settings, size_t count,
		      const char *username, struct rbox_rs_user **user_r,
		      char **error_r);
void rbox_rs_user_free(struct rbox_rs_user *user);

/* Write the mails of one committed transaction (every xattr, U included, in one op per
   mail); returns once all are durable. On failure nothing stays written. Their omap
   index records are queued and written in the background (failures go to stderr,
   i.e. Dovecot's log; rbox fsck --repair re-creates what is lost). */
int rbox_rs_save(struct rbox_rs_user *user, const struct rbox_rs_mailbox *box,
		 struct rbox_rs_save_mail *mails, size_t count,
		 char **error_r);

/* The object's data; a read started by rbox_rs_prefetch() is awaited instead. */
int rbox_rs_read(struct rbox_rs_user *user, const unsigned char oid[16],
		 struct rbox_rs_body *body_r, char **error_r);
/* Start reading the object in the background for a later rbox_rs_read() (Dovecot's
   mail_prefetch_count). Never fails: a refused or failed prefetch just means the read
   happens then. */
void rbox_rs_prefetch(struct rbox_rs_user *user, const unsigned char oid[16]);
void rbox_rs_body_free(struct rbox_rs_body *body);

/* The object's G xattr (for mails saved with a text GUID). */
int rbox_rs_mail_guid(struct rbox_rs_user *user, const unsigned char oid[16],
		      char **guid_r, char **error_r);

/* Remove expunged mails' objects (missing ones are fine); returns once they are gone.
   Their omap records are dropped by the queued mirror. */
int rbox_rs_expunge(struct rbox_rs_user *user, const struct rbox_rs_mailbox *box,
		    const struct rbox_rs_expunge *mails, size_t count,
		    char **error_r);

/* Queue final flags/keywords for the omap mirror (returns at once; only bad input fails). */
int rbox_rs_set_flags(struct rbox_rs_user *user,
		      const struct rbox_rs_mailbox *box,
		      const struct rbox_rs_flags *mails, size_t count,
		      char **error_r);

/* Queue a created or renamed mailbox for the omap mirror (returns at once). */
int rbox_rs_mailbox_update(struct rbox_rs_user *user,
			   const struct rbox_rs_mailbox *box, char **error_r);
/* Queue a deleted mailbox for the omap mirror (returns at once). */
int rbox_rs_mailbox_delete(struct rbox_rs_user *user,
			   const struct rbox_rs_mailbox *box, char **error_r);

/* Every mail object of the mailbox: M is its GUID, or B is its name and M names no
   mailbox the omap index knows (objects of another writer). */
int rbox_rs_list_mailbox(struct rbox_rs_user *user,
			 const struct rbox_rs_mailbox *box,
			 rbox_rs_found_cb *callback, void *context,
			 char **error_r);
/* Set an object's U and M xattrs (adopting it into a mailbox under a new UID). */
int rbox_rs_adopt(struct rbox_rs_user *user, const struct rbox_rs_mailbox *box,
		  const unsigned char oid[16], uint32_t uid, char **error_r);

void rbox_rs_free_string(char *str);

#endif

#ifndef RBOX_STORAGE_H
#define RBOX_STORAGE_H

/* The Dovecot side of the rbox storage: Dovecot's index (on local disk, under
   mail_location=rbox:<dir>) holds UIDs, flags, keywords and the folder list, as with
   upstream's plugin; the mail bodies and their librmb xattrs live in RADOS, written and
   read by the Rust core through rbox-ffi.h, which also mirrors every change into the
   omap index. */

#include "lib.h"
#include "index-storage.h"
#include "index-mail.h"
#include "mailbox-list-private.h"
#include "rbox-ffi.h"

#define RBOX_STORAGE_NAME "rbox"
#define RBOX_SUBSCRIPTION_FILE_NAME "subscriptions"
#define RBOX_UIDVALIDITY_FILE_NAME "dovecot-uidvalidity"
/* Same directory names as upstream, so existing index directories keep working. */
#define RBOX_MAILBOX_DIR_NAME "mailboxes"
#define RBOX_MAILDIR_NAME "rbox-Mails"

/* Mailbox header ext "dbox-hdr" (upstream's layout): the mailbox GUID. */
struct rbox_index_header {
	uint32_t rebuild_count;
	guid_128_t mailbox_guid;
	uint8_t flags;
	uint8_t unused[3];
};

/* Per-mail ext "obox" (upstream's layout): mail GUID then object id, raw. A text GUID
   (dsync from Maildir) leaves guid zero; it is then read from the object's G. */
struct rbox_mail_index_record {
	guid_128_t guid;
	guid_128_t oid;
};

/* Per-mail ext "rbox-dates": what a stat would give a file-based backend. */
struct rbox_mail_dates {
	uint64_t received_date;
	uint64_t save_date;
};

struct rbox_storage {
	struct mail_storage storage;
	/* Connected on first use, so a Ceph outage fails commands, not logins. */
	struct rbox_rs_user *user;
};

struct rbox_mailbox {
	struct mailbox box;
	struct rbox_storage *storage;
	uint32_t hdr_ext_id, obox_ext_id, dates_ext_id;
	guid_128_t mailbox_guid;
};

#define RBOX_STORAGE(s) container_of(s, struct rbox_storage, storage)
#define RBOX_MAILBOX(s) container_of(s, struct rbox_mailbox, box)

extern struct mail_vfuncs rbox_mail_vfuncs;

/* rbox-storage.c */
struct rbox_rs_user *rbox_storage_user(struct mail_storage *storage);
void rbox_set_error(struct mail_storage *storage, int status, const char *what,
		    char *rust_error);
void rbox_log_warning(struct mailbox *box, const char *what, char *rust_error);
void rbox_mailbox_ref(struct rbox_mailbox *mbox, struct rbox_rs_mailbox *ref_r);
int rbox_read_header(struct rbox_mailbox *mbox, struct rbox_index_header *hdr);
int rbox_mailbox_create_indexes(struct mailbox *box,
				const struct mailbox_update *update,
				struct mail_index_transaction *trans);

/* rbox-mail.c */
int rbox_mail_lookup(struct mail *mail, struct rbox_mail_index_record *rec_r);

/* rbox-save.c */
struct mail_save_context *
rbox_save_alloc(struct mailbox_transaction_context *t);
int rbox_save_begin(struct mail_save_context *ctx, struct istream *input);
int rbox_save_continue(struct mail_save_context *ctx);
int rbox_save_finish(struct mail_save_context *ctx);
void rbox_save_cancel(struct mail_save_context *ctx);
int rbox_transaction_save_commit_pre(struct mail_save_context *ctx);
void rbox_transaction_save_commit_post(struct mail_save_context *ctx,
				       struct mail_index_transaction_commit_result *result);
void rbox_transaction_save_rollback(struct mail_save_context *ctx);
const buffer_t *rbox_save_get_body(struct mail_save_context *ctx, uint32_t seq);
/* For a mail copied in this transaction: its source object. */
bool rbox_save_get_copy_source(struct mail_save_context *ctx, uint32_t seq,
			       guid_128_t src_oid_r);
int rbox_save_copy(struct mail_save_context *ctx, struct mail *mail);

/* rbox-sync.c */
struct rbox_sync_context {
	struct rbox_mailbox *mbox;
	struct mail_index_sync_ctx *index_sync_ctx;
	struct mail_index_view *sync_view;
	struct mail_index_transaction *trans;
	uint32_t uid_validity;
	/* UIDs whose flags or keywords changed: mirrored after the commit. */
	ARRAY_TYPE(seq_range) changed_uids;
};

int rbox_sync_begin(struct rbox_mailbox *mbox, struct rbox_sync_context **ctx_r,
		    bool force);
int rbox_sync_finish(struct rbox_sync_context **ctx, bool success);
struct mailbox_sync_context *
rbox_storage_sync_init(struct mailbox *box, enum mailbox_sync_flags flags);

#endif

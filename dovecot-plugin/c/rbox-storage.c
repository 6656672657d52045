/* The rbox storage class and its mailbox vfuncs. */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "mail-copy.h"
#include "mail-user.h"
#include "mail-storage-settings.h"
#include "mailbox-uidvalidity.h"
#include "mailbox-watch.h"
#include "index-pop3-uidl.h"
#include "mail-index-modseq.h"
#include "rbox-storage.h"

#include <sys/stat.h>

extern struct mail_storage rbox_storage;
extern struct mailbox rbox_mailbox;

void rbox_c_plugin_init(struct module *module);
void rbox_c_plugin_deinit(void);

/* ---- errors ---- */

void rbox_set_error(struct mail_storage *storage, int status, const char *what,
		    char *rust_error)
{
	const char *msg = t_strdup_printf("rbox: %s: %s", what,
		rust_error == NULL ? "failed" : rust_error);
	rbox_rs_free_string(rust_error);

	/* Logged in full; the client gets a short text with a response code
	   that fits (imap maps MAIL_ERROR_* to [UNAVAILABLE], [OVERQUOTA] ...). */
	switch (status) {
	case RBOX_RS_ERR_NOTFOUND:
		i_warning("%s", msg);
		mail_storage_set_error(storage, MAIL_ERROR_EXPUNGED,
				       "Mail no longer exists in Ceph");
		break;
	case RBOX_RS_ERR_TOO_LARGE:
		i_error("%s", msg);
		mail_storage_set_error(storage, MAIL_ERROR_LIMIT,
				       "Mail is larger than the object store accepts");
		break;
	case RBOX_RS_ERR_NOSPACE:
		i_error("%s", msg);
		/* A full pool is the operator's outage, not the user's quota: LMTP
		   answers 451 (the MTA retries) rather than lmtp's 552 for
		   NOQUOTA, which would bounce the mail. IMAP gets [OVERQUOTA]. */
		if (storage->user != NULL && storage->user->service != NULL &&
		    strcmp(storage->user->service, "lmtp") == 0) {
			mail_storage_set_error(storage, MAIL_ERROR_TEMP,
					       "Mail storage is full");
		} else {
			mail_storage_set_error(storage, MAIL_ERROR_NOQUOTA,
					       "Mail storage is full");
		}
		break;
	case RBOX_RS_ERR_PARAMS:
		mail_storage_set_critical(storage, "%s", msg);
		break;
	case RBOX_RS_ERR_CORRUPT:
	case RBOX_RS_ERR_BUG:
		/* critical: the client sees [SERVERBUG] */
		mail_storage_set_critical(storage, "%s", msg);
		break;
	case RBOX_RS_ERR_PERM:
	case RBOX_RS_ERR_TEMP:
	default:
		i_error("%s", msg);
		mail_storage_set_error(storage, MAIL_ERROR_UNAVAILABLE,
			"Mail storage (Ceph) is temporarily unavailable");
		break;
	}
}

void rbox_log_warning(struct mailbox *box, const char *what, char *rust_error)
{
	i_warning("rbox: %s: %s (%s)", box->vname, what,
		  rust_error == NULL ? "unknown error" : rust_error);
	rbox_rs_free_string(rust_error);
}

/* ---- the user's Ceph handle ---- */

struct rbox_rs_user *rbox_storage_user(struct mail_storage *_storage)
{
	struct rbox_storage *storage = RBOX_STORAGE(_storage);
	struct mail_user *user = _storage->user;
	ARRAY(struct rbox_rs_setting) settings;
	const char *const *envs;
	unsigned int i, count;
	char *error = NULL;
	int ret;

	if (storage->user != NULL)
		return storage->user;

	t_array_init(&settings, 16);
	envs = array_get(&user->set->plugin_envs, &count);
	for (i = 0; i + 1 < count; i += 2) {
		struct rbox_rs_setting *s = array_append_space(&settings);
		s->key = envs[i];
		s->value = mail_user_plugin_getenv(user, envs[i]);
	}
	ret = rbox_rs_user_open(array_front(&settings), array_count(&settings),
				user->username, &storage->user, &error);
	if (ret != RBOX_RS_OK) {
		storage->user = NULL;
		rbox_set_error(_storage, ret, "connecting to Ceph", error);
		return NULL;
	}
	return storage->user;
}

void rbox_mailbox_ref(struct rbox_mailbox *mbox, struct rbox_rs_mailbox *ref_r)
{
	memcpy(ref_r->guid, mbox->mailbox_guid, sizeof(ref_r->guid));
	ref_r->name = mbox->box.vname;
}

/* ---- storage ---- */

static struct mail_storage *rbox_storage_alloc(void)
{
	struct rbox_storage *storage;
	pool_t pool;

	pool = pool_alloconly_create("rbox storage", 512+256);
	storage = p_new(pool, struct rbox_storage, 1);
	storage->storage = rbox_storage;
	storage->storage.pool = pool;
	return &storage->storage;
}

static void rbox_storage_destroy(struct mail_storage *_storage)
{
	struct rbox_storage *storage = RBOX_STORAGE(_storage);

	if (storage->user != NULL) {
		rbox_rs_user_free(storage->user);
		storage->user = NULL;
	}
	index_storage_destroy(_storage);
}

static void
rbox_storage_get_list_settings(const struct mail_namespace *ns ATTR_UNUSED,
			       struct mailbox_list_settings *set)
{
	if (set->layout == NULL)
		set->layout = MAILBOX_LIST_NAME_FS;
	if (set->subscription_fname == NULL)
		set->subscription_fname = RBOX_SUBSCRIPTION_FILE_NAME;
	if (set->maildir_name == NULL || *set->maildir_name == '\0')
		set->maildir_name = RBOX_MAILDIR_NAME;
	if (set->mailbox_dir_name == NULL || *set->mailbox_dir_name == '\0')
		set->mailbox_dir_name = RBOX_MAILBOX_DIR_NAME"/";
}

/* ---- mailbox ---- */

static struct mailbox *
rbox_mailbox_alloc(struct mail_storage *storage, struct mailbox_list *list,
		   const char *vname, enum mailbox_flags flags)
{
	struct rbox_mailbox *mbox;
	struct index_mailbox_context *ibox;
	pool_t pool;

	/* the index is where UIDs and flags live */
	flags &= ENUM_NEGATE(MAILBOX_FLAG_NO_INDEX_FILES);

	pool = pool_alloconly_create("rbox mailbox", 1024*3);
	mbox = p_new(pool, struct rbox_mailbox, 1);
	mbox->box = rbox_mailbox;
	mbox->box.pool = pool;
	mbox->box.storage = storage;
	mbox->box.list = list;
	mbox->box.mail_vfuncs = &rbox_mail_vfuncs;

	index_storage_mailbox_alloc(&mbox->box, vname, flags, MAIL_INDEX_PREFIX);

	ibox = INDEX_STORAGE_CONTEXT(&mbox->box);
	ibox->index_flags |= MAIL_INDEX_OPEN_FLAG_KEEP_BACKUPS |
		MAIL_INDEX_OPEN_FLAG_NEVER_IN_MEMORY;
	mbox->storage = RBOX_STORAGE(storage);
	return &mbox->box;
}

int rbox_read_header(struct rbox_mailbox *mbox, struct rbox_index_header *hdr)
{
	struct mail_index_view *view;
	const void *data;
	size_t size;
	int ret = 0;

	view = mail_index_view_open(mbox->box.index);
	mail_index_get_header_ext(view, mbox->hdr_ext_id, &data, &size);
	i_zero(hdr);
	if (size > 0)
		memcpy(hdr, data, I_MIN(size, sizeof(*hdr)));
	if (guid_128_is_empty(hdr->mailbox_guid))
		ret = -1;
	mail_index_view_close(&view);
	return ret;
}

static void rbox_update_header(struct rbox_mailbox *mbox,
			       struct mail_index_transaction *trans,
			       const struct mailbox_update *update)
{
	struct rbox_index_header hdr, new_hdr;
	const void *data;
	size_t size;

	mail_index_get_header_ext(mbox->box.view, mbox->hdr_ext_id, &data, &size);
	i_zero(&hdr);
	if (size > 0)
		memcpy(&hdr, data, I_MIN(size, sizeof(hdr)));
	new_hdr = hdr;
	if (update != NULL && !guid_128_is_empty(update->mailbox_guid))
		guid_128_copy(new_hdr.mailbox_guid, update->mailbox_guid);
	else if (guid_128_is_empty(new_hdr.mailbox_guid))
		guid_128_generate(new_hdr.mailbox_guid);

	if (size < sizeof(new_hdr))
		mail_index_ext_resize_hdr(trans, mbox->hdr_ext_id, sizeof(new_hdr));
	if (size < sizeof(new_hdr) || memcmp(&hdr, &new_hdr, sizeof(hdr)) != 0) {
		mail_index_update_header_ext(trans, mbox->hdr_ext_id, 0,
					     &new_hdr, sizeof(new_hdr));
	}
	guid_128_copy(mbox->mailbox_guid, new_hdr.mailbox_guid);
}

static uint32_t rbox_get_uidvalidity_next(struct mailbox_list *list)
{
	const char *path;

	path = mailbox_list_get_root_forced(list, MAILBOX_LIST_PATH_TYPE_CONTROL);
	path = t_strconcat(path, "/"RBOX_UIDVALIDITY_FILE_NAME, NULL);
	return mailbox_uidvalidity_next(list, path);
}

int rbox_mailbox_create_indexes(struct mailbox *box,
				const struct mailbox_update *update,
				struct mail_index_transaction *trans)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	const struct mail_index_header *hdr;
	uint32_t uid_validity, uid_next;

	hdr = mail_index_get_header(box->view);
	if (update != NULL && update->uid_validity != 0)
		uid_validity = update->uid_validity;
	else if (hdr->uid_validity != 0)
		uid_validity = hdr->uid_validity;
	else
		uid_validity = rbox_get_uidvalidity_next(box->list);

	if (hdr->uid_validity != uid_validity) {
		mail_index_update_header(trans,
			offsetof(struct mail_index_header, uid_validity),
			&uid_validity, sizeof(uid_validity), TRUE);
	}
	if (update != NULL && hdr->next_uid < update->min_next_uid) {
		uid_next = update->min_next_uid;
		mail_index_update_header(trans,
			offsetof(struct mail_index_header, next_uid),
			&uid_next, sizeof(uid_next), TRUE);
	}
	if (update != NULL && update->min_first_recent_uid != 0 &&
	    hdr->first_recent_uid < update->min_first_recent_uid) {
		uint32_t first_recent_uid = update->min_first_recent_uid;

		mail_index_update_header(trans,
			offsetof(struct mail_index_header, first_recent_uid),
			&first_recent_uid, sizeof(first_recent_uid), FALSE);
	}
	if (update != NULL && update->min_highest_modseq != 0 &&
	    mail_index_modseq_get_highest(box->view) <
	    update->min_highest_modseq) {
		mail_index_modseq_enable(box->index);
		mail_index_update_highest_modseq(trans,
						 update->min_highest_modseq);
	}
	if (box->inbox_user && box->creating)
		index_pop3_uidl_set_max_uid(box, trans, 0);
	rbox_update_header(mbox, trans, update);
	return 0;
}

/* Create or update the index header under the index sync lock. */
static int rbox_mailbox_write_indexes(struct mailbox *box,
				      const struct mailbox_update *update,
				      bool only_if_new)
{
	struct mail_index_sync_ctx *sync_ctx;
	struct mail_index_view *view;
	struct mail_index_transaction *trans;
	int ret;

	ret = mail_index_sync_begin(box->index, &sync_ctx, &view, &trans, 0);
	if (ret <= 0) {
		i_assert(ret != 0);
		mailbox_set_index_error(box);
		return -1;
	}
	if (!only_if_new || mail_index_get_header(view)->uid_validity == 0)
		(void)rbox_mailbox_create_indexes(box, update, trans);
	if (mail_index_sync_commit(&sync_ctx) < 0) {
		mailbox_set_index_error(box);
		return -1;
	}
	return 0;
}

/* Mirror the mailbox into the omap index; a failure there does not fail the
   command (Dovecot's index is authoritative in this mode; every save mirrors
   the mailbox again). */
static void rbox_mirror_mailbox(struct rbox_mailbox *mbox)
{
	struct rbox_rs_user *user;
	struct rbox_rs_mailbox ref;
	char *error = NULL;

	if (guid_128_is_empty(mbox->mailbox_guid))
		return;
	user = rbox_storage_user(mbox->box.storage);
	if (user == NULL) {
		mail_storage_clear_error(mbox->box.storage);
		i_warning("rbox: %s: omap index not updated (Ceph unavailable)",
			  mbox->box.vname);
		return;
	}
	rbox_mailbox_ref(mbox, &ref);
	if (rbox_rs_mailbox_update(user, &ref, &error) != RBOX_RS_OK)
		rbox_log_warning(&mbox->box, "omap index not updated", error);
}

static int rbox_mailbox_alloc_index(struct rbox_mailbox *mbox)
{
	struct rbox_index_header hdr;

	if (index_storage_mailbox_alloc_index(&mbox->box) < 0)
		return -1;
	mbox->hdr_ext_id = mail_index_ext_register(mbox->box.index, "dbox-hdr",
		sizeof(struct rbox_index_header), 0, 0);
	mbox->obox_ext_id = mail_index_ext_register(mbox->box.index, "obox", 0,
		sizeof(struct rbox_mail_index_record), 1);
	mbox->dates_ext_id = mail_index_ext_register(mbox->box.index,
		"rbox-dates", 0, sizeof(struct rbox_mail_dates),
		sizeof(uint64_t));
	i_zero(&hdr);
	guid_128_generate(hdr.mailbox_guid);
	mail_index_set_ext_init_data(mbox->box.index, mbox->hdr_ext_id,
				     &hdr, sizeof(hdr));
	return 0;
}

static int rbox_mailbox_open(struct mailbox *box)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	struct rbox_index_header hdr;
	const char *path;
	struct stat st;

	if (rbox_mailbox_alloc_index(mbox) < 0)
		return -1;
	if (!box->creating) {
		path = mailbox_get_path(box);
		if (stat(path, &st) < 0) {
			if (ENOTFOUND(errno)) {
				mail_storage_set_error(box->storage,
					MAIL_ERROR_NOTFOUND,
					T_MAIL_ERR_MAILBOX_NOT_FOUND(box->vname));
			} else if (errno == EACCES) {
				mail_storage_set_critical(box->storage, "%s",
					mail_error_eacces_msg("stat", path));
			} else {
				mail_storage_set_critical(box->storage,
					"stat(%s) failed: %m", path);
			}
			return -1;
		}
	}
	if (index_storage_mailbox_open(box, FALSE) < 0)
		return -1;
	mail_index_set_fsync_mode(box->index,
				  box->storage->set->parsed_fsync_mode,
				  MAIL_INDEX_FSYNC_MASK_APPENDS |
				  MAIL_INDEX_FSYNC_MASK_EXPUNGES);
	if (box->creating)
		return 0;
	if (rbox_read_header(mbox, &hdr) < 0) {
		/* no GUID yet (crash during create): generate one */
		if (rbox_mailbox_write_indexes(box, NULL, FALSE) < 0 ||
		    rbox_read_header(mbox, &hdr) < 0) {
			mail_storage_set_critical(box->storage,
				"rbox %s: no mailbox GUID in the index",
				mailbox_get_path(box));
			return -1;
		}
	}
	guid_128_copy(mbox->mailbox_guid, hdr.mailbox_guid);
	return 0;
}

static int
rbox_mailbox_create(struct mailbox *box, const struct mailbox_update *update,
		    bool directory)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	int ret;

	if ((ret = index_storage_mailbox_create(box, directory)) <= 0)
		return ret;
	if (mailbox_open(box) < 0)
		return -1;
	if (mail_index_get_header(box->view)->uid_validity != 0 &&
	    !box->storage->rebuilding_list_index) {
		mail_storage_set_error(box->storage, MAIL_ERROR_EXISTS,
				       "Mailbox already exists");
		return -1;
	}
	if (rbox_mailbox_write_indexes(box, update, TRUE) < 0)
		return -1;
	rbox_mirror_mailbox(mbox);
	return 0;
}

static int
rbox_mailbox_update(struct mailbox *box, const struct mailbox_update *update)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	guid_128_t old_guid;

	if (!box->opened) {
		if (mailbox_open(box) < 0)
			return -1;
	}
	guid_128_copy(old_guid, mbox->mailbox_guid);
	if (rbox_mailbox_write_indexes(box, update, FALSE) < 0)
		return -1;
	if (!guid_128_equals(old_guid, mbox->mailbox_guid))
		rbox_mirror_mailbox(mbox);
	return index_storage_mailbox_update_common(box, update);
}

static int
rbox_mailbox_get_metadata(struct mailbox *box,
			  enum mailbox_metadata_items items,
			  struct mailbox_metadata *metadata_r)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);

	if (index_mailbox_get_metadata(box, items, metadata_r) < 0)
		return -1;
	if ((items & MAILBOX_METADATA_GUID) != 0)
		guid_128_copy(metadata_r->guid, mbox->mailbox_guid);
	return 0;
}

static int rbox_mailbox_delete(struct mailbox *box)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	struct rbox_rs_mailbox ref;
	struct rbox_rs_user *user;
	char *error = NULL;

	/* expunges every mail first (through our sync, which removes the
	   objects), then removes the directory */
	if (index_storage_mailbox_delete(box) < 0)
		return -1;
	if (guid_128_is_empty(mbox->mailbox_guid))
		return 0;
	user = rbox_storage_user(box->storage);
	if (user == NULL) {
		mail_storage_clear_error(box->storage);
		return 0;
	}
	rbox_mailbox_ref(mbox, &ref);
	if (rbox_rs_mailbox_delete(user, &ref, &error) != RBOX_RS_OK)
		rbox_log_warning(box, "omap index entry not removed", error);
	return 0;
}

static int rbox_mailbox_rename(struct mailbox *src, struct mailbox *dest)
{
	struct mailbox_metadata metadata;
	struct rbox_mailbox *dmbox = RBOX_MAILBOX(dest);
	bool have_guid;

	have_guid = mailbox_get_metadata(src, MAILBOX_METADATA_GUID,
					 &metadata) == 0;
	if (!have_guid)
		mail_storage_clear_error(src->storage);
	if (index_storage_mailbox_rename(src, dest) < 0)
		return -1;
	if (have_guid) {
		guid_128_copy(dmbox->mailbox_guid, metadata.guid);
		rbox_mirror_mailbox(dmbox);
	}
	return 0;
}

static void rbox_notify_changes(struct mailbox *box)
{
	if (box->notify_callback == NULL)
		mailbox_watch_remove_all(box);
	else
		mailbox_watch_add(box, mailbox_get_path(box));
}

static int
rbox_copy(struct mail_save_context *ctx, struct mail *mail)
{
	const char *guid;

	/* Within one rbox storage (one user's namespace): a RADOS copy at commit. */
	if (mail->box->storage == ctx->transaction->box->storage)
		return rbox_save_copy(ctx, mail);
	/* Like librmb: a copy is a new object that keeps the mail GUID (G). */
	if (ctx->data.guid == NULL &&
	    strcmp(mail->box->storage->name, RBOX_STORAGE_NAME) == 0 &&
	    mail_get_special(mail, MAIL_FETCH_GUID, &guid) == 0)
		mailbox_save_set_guid(ctx, guid);
	return mail_storage_copy(ctx, mail);
}

struct mail_storage rbox_storage = {
	.name = RBOX_STORAGE_NAME,
	.class_flags = MAIL_STORAGE_CLASS_FLAG_FILE_PER_MSG |
		MAIL_STORAGE_CLASS_FLAG_HAVE_MAIL_GUIDS |
		MAIL_STORAGE_CLASS_FLAG_HAVE_MAIL_SAVE_GUIDS |
		MAIL_STORAGE_CLASS_FLAG_BINARY_DATA,
	.v = {
		.alloc = rbox_storage_alloc,
		.destroy = rbox_storage_destroy,
		.get_list_settings = rbox_storage_get_list_settings,
		.mailbox_alloc = rbox_mailbox_alloc,
	}
};

struct mailbox rbox_mailbox = {
	.v = {
		.is_readonly = index_storage_is_readonly,
		.enable = index_storage_mailbox_enable,
		.exists = index_storage_mailbox_exists,
		.open = rbox_mailbox_open,
		.close = index_storage_mailbox_close,
		.free = index_storage_mailbox_free,
		.create_box = rbox_mailbox_create,
		.update_box = rbox_mailbox_update,
		.delete_box = rbox_mailbox_delete,
		.rename_box = rbox_mailbox_rename,
		.get_status = index_storage_get_status,
		.get_metadata = rbox_mailbox_get_metadata,
		.set_subscribed = index_storage_set_subscribed,
		.attribute_set = index_storage_attribute_set,
		.attribute_get = index_storage_attribute_get,
		.attribute_iter_init = index_storage_attribute_iter_init,
		.attribute_iter_next = index_storage_attribute_iter_next,
		.attribute_iter_deinit = index_storage_attribute_iter_deinit,
		.list_index_has_changed = index_storage_list_index_has_changed,
		.list_index_update_sync = index_storage_list_index_update_sync,
		.sync_init = rbox_storage_sync_init,
		.sync_next = index_mailbox_sync_next,
		.sync_deinit = index_mailbox_sync_deinit,
		.notify_changes = rbox_notify_changes,
		.transaction_begin = index_transaction_begin,
		.transaction_commit = index_transaction_commit,
		.transaction_rollback = index_transaction_rollback,
		.mail_alloc = index_mail_alloc,
		.search_init = index_storage_search_init,
		.search_deinit = index_storage_search_deinit,
		.search_next_nonblock = index_storage_search_next_nonblock,
		.search_next_update_seq = index_storage_search_next_update_seq,
		.search_next_match_mail = index_storage_search_next_match_mail,
		.save_alloc = rbox_save_alloc,
		.save_begin = rbox_save_begin,
		.save_continue = rbox_save_continue,
		.save_finish = rbox_save_finish,
		.save_cancel = rbox_save_cancel,
		.copy = rbox_copy,
		.transaction_save_commit_pre = rbox_transaction_save_commit_pre,
		.transaction_save_commit_post = rbox_transaction_save_commit_post,
		.transaction_save_rollback = rbox_transaction_save_rollback,
		.is_inconsistent = index_storage_is_inconsistent,
	}
};

void rbox_c_plugin_init(struct module *module ATTR_UNUSED)
{
	mail_storage_class_register(&rbox_storage);
}

void rbox_c_plugin_deinit(void)
{
	mail_storage_class_unregister(&rbox_storage);
}

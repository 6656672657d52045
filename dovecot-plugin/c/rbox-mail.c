/* Reading mails: bodies come from RADOS, everything else from Dovecot's index. */

#include "lib.h"
#include "istream.h"
#include "str.h"
#include "index-mail.h"
#include "rbox-storage.h"

#include <sys/stat.h>

int rbox_mail_lookup(struct mail *_mail, struct rbox_mail_index_record *rec_r)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(_mail->box);
	const void *data;
	bool expunged;

	mail_index_lookup_ext(_mail->transaction->view, _mail->seq,
			      mbox->obox_ext_id, &data, &expunged);
	if (expunged) {
		mail_set_expunged(_mail);
		return -1;
	}
	if (data == NULL) {
		i_zero(rec_r);
	} else {
		memcpy(rec_r, data, sizeof(*rec_r));
	}
	if (guid_128_is_empty(rec_r->oid)) {
		mail_set_critical(_mail, "rbox: no object id in the index");
		return -1;
	}
	return 0;
}

static bool rbox_mail_dates(struct mail *_mail, struct rbox_mail_dates *dates_r)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(_mail->box);
	const void *data;
	bool expunged;

	mail_index_lookup_ext(_mail->transaction->view, _mail->seq,
			      mbox->dates_ext_id, &data, &expunged);
	if (data == NULL)
		return FALSE;
	memcpy(dates_r, data, sizeof(*dates_r));
	return dates_r->save_date != 0;
}

static int rbox_mail_get_received_date(struct mail *_mail, time_t *date_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	struct rbox_mail_dates dates;

	if (index_mail_get_received_date(_mail, date_r) == 0)
		return 0;
	if (!rbox_mail_dates(_mail, &dates)) {
		mail_set_critical(_mail, "rbox: no received date in the index");
		return -1;
	}
	mail->data.received_date = (time_t)dates.received_date;
	*date_r = mail->data.received_date;
	return 0;
}

static int rbox_mail_get_save_date(struct mail *_mail, time_t *date_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	struct rbox_mail_dates dates;

	if (index_mail_get_save_date(_mail, date_r) > 0)
		return 1;
	if (!rbox_mail_dates(_mail, &dates)) {
		mail_set_critical(_mail, "rbox: no save date in the index");
		return -1;
	}
	mail->data.save_date = (time_t)dates.save_date;
	*date_r = mail->data.save_date;
	return 1;
}

static bool rbox_mailbox_is_gone(struct mailbox *box)
{
	const char *path;
	struct stat st;

	if (mail_index_is_deleted(box->index))
		return TRUE;
	if (mailbox_get_path_to(box, MAILBOX_LIST_PATH_TYPE_MAILBOX, &path) <= 0)
		return FALSE;
	return stat(path, &st) < 0 && errno == ENOENT;
}

/* A mail's object is not in RADOS. Like sdbox and Maildir: the mailbox was
   deleted (or renamed) under us -> a mailbox error, the session ends; another
   session expunged the mail -> expunged. Otherwise the object was deleted
   behind Dovecot's back: a warning, and the mail reads as expunged. */
static void rbox_mail_object_missing(struct mail *_mail,
				     const struct rbox_mail_index_record *rec,
				     const char *error)
{
	/* a copy being saved reads its source's object: this mailbox's
	   state says nothing about it */
	if (!_mail->saving) {
		(void)mail_index_refresh(_mail->box->index);
		if (rbox_mailbox_is_gone(_mail->box)) {
			mailbox_set_deleted(_mail->box);
			return;
		}
		if (mail_index_is_expunged(_mail->transaction->view,
					   _mail->seq)) {
			mail_set_expunged(_mail);
			return;
		}
	}
	i_warning("rbox: %s: UID %u: object %s: %s", _mail->box->vname,
		  _mail->uid, guid_128_to_string(rec->oid),
		  error == NULL ? "not found" : error);
	mail_set_expunged(_mail);
}

static struct istream *rbox_mail_saving_stream(struct mail *_mail)
{
	struct mail_save_context *save_ctx = _mail->transaction->save_ctx;
	const buffer_t *body;

	if (save_ctx == NULL)
		return NULL;
	body = rbox_save_get_body(save_ctx, _mail->seq);
	if (body == NULL)
		return NULL;
	return i_stream_create_copy_from_data(body->data, body->used);
}

static int
rbox_mail_get_stream(struct mail *_mail, bool get_body ATTR_UNUSED,
		     struct message_size *hdr_size,
		     struct message_size *body_size,
		     struct istream **stream_r)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	struct rbox_mail_index_record rec;
	struct rbox_rs_body body;
	struct rbox_rs_user *user;
	char *error = NULL;
	int ret;

	if (mail->data.stream == NULL) {
		if (!mail_stream_access_start(_mail))
			return -1;
		if (_mail->saving)
			mail->data.stream = rbox_mail_saving_stream(_mail);
	}
	if (mail->data.stream == NULL) {
		if (!_mail->saving ||
		    !rbox_save_get_copy_source(_mail->transaction->save_ctx,
					       _mail->seq, rec.oid)) {
			if (rbox_mail_lookup(_mail, &rec) < 0)
				return -1;
		}
		user = rbox_storage_user(_mail->box->storage);
		if (user == NULL)
			return -1;
		ret = rbox_rs_read(user, rec.oid, &body, &error);
		if (ret == RBOX_RS_ERR_NOTFOUND) {
			rbox_mail_object_missing(_mail, &rec, error);
			rbox_rs_free_string(error);
			return -1;
		}
		if (ret != RBOX_RS_OK) {
			rbox_set_error(_mail->box->storage, ret,
				t_strdup_printf("reading object %s of UID %u",
						guid_128_to_string(rec.oid), _mail->uid),
				error);
			return -1;
		}
		mail->data.stream =
			i_stream_create_copy_from_data(body.data, body.size);
		rbox_rs_body_free(&body);
	}
	return index_mail_init_stream(mail, hdr_size, body_size, stream_r);
}

/* Dovecot's mail_prefetch_count: start the object's read now, so that the reads of a
   FETCH over many mails overlap instead of queueing one round trip each. */
static bool rbox_mail_prefetch(struct mail *_mail)
{
	struct index_mail *mail = INDEX_MAIL(_mail);
	struct rbox_mailbox *mbox = RBOX_MAILBOX(_mail->box);
	struct rbox_storage *storage = RBOX_STORAGE(_mail->box->storage);
	const struct rbox_mail_index_record *rec;
	const void *data;
	bool expunged;

	if (mail->data.access_part == 0 || mail->data.stream != NULL ||
	    _mail->saving || storage->user == NULL)
		return TRUE;
	mail_index_lookup_ext(_mail->transaction->view, _mail->seq,
			      mbox->obox_ext_id, &data, &expunged);
	if (data == NULL || expunged)
		return TRUE;
	rec = data;
	if (guid_128_is_empty(rec->oid))
		return TRUE;
	rbox_rs_prefetch(storage->user, rec->oid);
	return FALSE;
}

static int
rbox_mail_get_special(struct mail *_mail, enum mail_fetch_field field,
		      const char **value_r)
{
	struct rbox_mail_index_record rec;
	struct rbox_rs_user *user;
	char *guid = NULL, *error = NULL;
	int ret;

	switch (field) {
	case MAIL_FETCH_GUID:
		if (rbox_mail_lookup(_mail, &rec) < 0)
			return -1;
		if (!guid_128_is_empty(rec.guid)) {
			*value_r = guid_128_to_string(rec.guid);
			return 0;
		}
		/* a text GUID (from dsync): kept in the object's G */
		user = rbox_storage_user(_mail->box->storage);
		if (user == NULL)
			return -1;
		ret = rbox_rs_mail_guid(user, rec.oid, &guid, &error);
		if (ret == RBOX_RS_ERR_NOTFOUND) {
			rbox_mail_object_missing(_mail, &rec, error);
			rbox_rs_free_string(error);
			return -1;
		}
		if (ret != RBOX_RS_OK) {
			rbox_set_error(_mail->box->storage, ret,
				       "reading the mail GUID", error);
			return -1;
		}
		*value_r = t_strdup(guid);
		rbox_rs_free_string(guid);
		return 0;
	case MAIL_FETCH_STORAGE_ID:
		if (rbox_mail_lookup(_mail, &rec) < 0)
			return -1;
		*value_r = guid_128_to_string(rec.oid);
		return 0;
	default:
		return index_mail_get_special(_mail, field, value_r);
	}
}

struct mail_vfuncs rbox_mail_vfuncs = {
	.close = index_mail_close,
	.free = index_mail_free,
	.set_seq = index_mail_set_seq,
	.set_uid = index_mail_set_uid,
	.set_uid_cache_updates = index_mail_set_uid_cache_updates,
	.prefetch = rbox_mail_prefetch,
	.precache = index_mail_precache,
	.add_temp_wanted_fields = index_mail_add_temp_wanted_fields,
	.get_flags = index_mail_get_flags,
	.get_keywords = index_mail_get_keywords,
	.get_keyword_indexes = index_mail_get_keyword_indexes,
	.get_modseq = index_mail_get_modseq,
	.get_pvt_modseq = index_mail_get_pvt_modseq,
	.get_parts = index_mail_get_parts,
	.get_date = index_mail_get_date,
	.get_received_date = rbox_mail_get_received_date,
	.get_save_date = rbox_mail_get_save_date,
	.get_virtual_size = index_mail_get_virtual_size,
	.get_physical_size = index_mail_get_physical_size,
	.get_first_header = index_mail_get_first_header,
	.get_headers = index_mail_get_headers,
	.get_header_stream = index_mail_get_header_stream,
	.get_stream = rbox_mail_get_stream,
	.get_binary_stream = index_mail_get_binary_stream,
	.get_special = rbox_mail_get_special,
	.get_backend_mail = index_mail_get_backend_mail,
	.update_flags = index_mail_update_flags,
	.update_keywords = index_mail_update_keywords,
	.update_modseq = index_mail_update_modseq,
	.update_pvt_modseq = index_mail_update_pvt_modseq,
	.update_pop3_uidl = NULL,
	.expunge = index_mail_expunge,
	.set_cache_corrupted = index_mail_set_cache_corrupted,
	.istream_opened = index_mail_opened,
};

/* Syncing Dovecot's index with RADOS: expunges remove the objects (before the index
   forgets the mails), flag and keyword changes are mirrored into the omap index after
   the index commit, and force-resync adopts what RADOS holds. */

#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "str.h"
#include "mailbox-recent-flags.h"
#include "rbox-storage.h"

struct rbox_sync_expunge {
	uint32_t seq;
	struct rbox_rs_expunge mail;
};
ARRAY_DEFINE_TYPE(rbox_sync_expunge, struct rbox_sync_expunge);

static void
rbox_sync_collect_expunges(struct rbox_sync_context *ctx, uint32_t seq1,
			   uint32_t seq2, ARRAY_TYPE(rbox_sync_expunge) *out)
{
	struct rbox_mailbox *mbox = ctx->mbox;
	struct rbox_sync_expunge *e;
	const void *data;
	bool expunged;

	for (; seq1 <= seq2; seq1++) {
		e = array_append_space(out);
		e->seq = seq1;
		mail_index_lookup_uid(ctx->sync_view, seq1, &e->mail.uid);
		mail_index_lookup_ext(ctx->sync_view, seq1, mbox->obox_ext_id,
				      &data, &expunged);
		if (data != NULL) {
			const struct rbox_mail_index_record *rec = data;
			memcpy(e->mail.oid, rec->oid, sizeof(e->mail.oid));
		}
	}
}

static int
rbox_sync_apply_expunges(struct rbox_sync_context *ctx,
			 const ARRAY_TYPE(rbox_sync_expunge) *expunges)
{
	struct mailbox *box = &ctx->mbox->box;
	const struct rbox_sync_expunge *e;
	struct rbox_rs_expunge *list;
	struct rbox_rs_mailbox ref;
	struct rbox_rs_user *user;
	unsigned int i, n = 0, count = array_count(expunges);
	char *error = NULL;
	int ret;

	if (count == 0)
		return 0;
	list = t_new(struct rbox_rs_expunge, count);
	array_foreach(expunges, e) {
		if (!guid_128_is_empty(e->mail.oid))
			list[n++] = e->mail;
	}
	if (n > 0) {
		user = rbox_storage_user(box->storage);
		if (user == NULL)
			return -1;
		rbox_mailbox_ref(ctx->mbox, &ref);
		ret = rbox_rs_expunge(user, &ref, list, n, &error);
		if (ret != RBOX_RS_OK) {
			/* the index keeps the mails: the expunge is retried
			   by the next sync */
			rbox_set_error(box->storage, ret, t_strdup_printf(
				"expunging %u mail(s) in %s", n, box->vname),
				error);
			return -1;
		}
	}
	for (i = 0; i < count; i++) {
		e = array_idx(expunges, i);
		if (box->v.sync_notify != NULL) {
			box->v.sync_notify(box, e->mail.uid,
					   MAILBOX_SYNC_TYPE_EXPUNGE);
		}
		mail_index_expunge(ctx->trans, e->seq);
	}
	return 0;
}

static int rbox_sync_index(struct rbox_sync_context *ctx)
{
	struct mailbox *box = &ctx->mbox->box;
	const struct mail_index_header *hdr;
	struct mail_index_sync_rec sync_rec;
	ARRAY_TYPE(rbox_sync_expunge) expunges;
	uint32_t seq1, seq2;
	int ret;

	hdr = mail_index_get_header(ctx->sync_view);
	if (hdr->uid_validity != 0)
		ctx->uid_validity = hdr->uid_validity;
	else {
		uint32_t uid_validity = ioloop_time;

		mail_index_update_header(ctx->trans,
			offsetof(struct mail_index_header, uid_validity),
			&uid_validity, sizeof(uid_validity), TRUE);
		ctx->uid_validity = uid_validity;
	}

	/* mark the newly seen messages as recent */
	if (mail_index_lookup_seq_range(ctx->sync_view, hdr->first_recent_uid,
					hdr->next_uid, &seq1, &seq2))
		mailbox_recent_flags_set_seqs(box, ctx->sync_view, seq1, seq2);

	t_array_init(&expunges, 16);
	while (mail_index_sync_next(ctx->index_sync_ctx, &sync_rec)) {
		if (!mail_index_lookup_seq_range(ctx->sync_view,
						 sync_rec.uid1, sync_rec.uid2,
						 &seq1, &seq2))
			continue; /* already expunged */

		switch (sync_rec.type) {
		case MAIL_INDEX_SYNC_TYPE_EXPUNGE:
			rbox_sync_collect_expunges(ctx, seq1, seq2, &expunges);
			break;
		case MAIL_INDEX_SYNC_TYPE_FLAGS:
		case MAIL_INDEX_SYNC_TYPE_KEYWORD_ADD:
		case MAIL_INDEX_SYNC_TYPE_KEYWORD_REMOVE:
			seq_range_array_add_range(&ctx->changed_uids,
						  sync_rec.uid1, sync_rec.uid2);
			break;
		}
	}
	ret = rbox_sync_apply_expunges(ctx, &expunges);
	if (box->v.sync_notify != NULL)
		box->v.sync_notify(box, 0, 0);
	return ret;
}

static void rbox_sync_free(struct rbox_sync_context *ctx)
{
	array_free(&ctx->changed_uids);
	i_free(ctx);
}

int rbox_sync_begin(struct rbox_mailbox *mbox, struct rbox_sync_context **ctx_r,
		    bool force)
{
	struct rbox_sync_context *ctx;
	enum mail_index_sync_flags sync_flags;
	int ret;

	ctx = i_new(struct rbox_sync_context, 1);
	ctx->mbox = mbox;
	i_array_init(&ctx->changed_uids, 8);

	sync_flags = index_storage_get_sync_flags(&mbox->box) |
		MAIL_INDEX_SYNC_FLAG_FLUSH_DIRTY;
	if (!force)
		sync_flags |= MAIL_INDEX_SYNC_FLAG_REQUIRE_CHANGES;

	ret = index_storage_expunged_sync_begin(&mbox->box, &ctx->index_sync_ctx,
						&ctx->sync_view, &ctx->trans,
						sync_flags);
	if (ret <= 0) {
		rbox_sync_free(ctx);
		*ctx_r = NULL;
		return ret;
	}

	T_BEGIN {
		ret = rbox_sync_index(ctx);
	} T_END;
	index_storage_expunging_deinit(&mbox->box);
	if (ret < 0) {
		mail_index_sync_rollback(&ctx->index_sync_ctx);
		rbox_sync_free(ctx);
		*ctx_r = NULL;
		return -1;
	}
	*ctx_r = ctx;
	return 0;
}

/* Push the final flags and keywords of changed mails into the omap index. */
static void rbox_sync_mirror_flags(struct rbox_sync_context *ctx)
{
	struct rbox_mailbox *mbox = ctx->mbox;
	struct mailbox *box = &mbox->box;
	const ARRAY_TYPE(keywords) *names;
	ARRAY(struct rbox_rs_flags) list;
	ARRAY_TYPE(keyword_indexes) kw;
	struct mail_index_view *view;
	struct seq_range_iter iter;
	struct rbox_rs_mailbox ref;
	struct rbox_rs_user *user;
	unsigned int n = 0, i;
	char *error = NULL;
	uint32_t uid, seq;

	if (array_count(&ctx->changed_uids) == 0 ||
	    guid_128_is_empty(mbox->mailbox_guid))
		return;
	user = rbox_storage_user(box->storage);
	if (user == NULL) {
		mail_storage_clear_error(box->storage);
		i_warning("rbox: %s: flags not mirrored (Ceph unavailable)",
			  box->vname);
		return;
	}
	names = mail_index_get_keywords(box->index);
	view = mail_index_view_open(box->index);
	t_array_init(&list, 16);
	t_array_init(&kw, 8);
	seq_range_array_iter_init(&iter, &ctx->changed_uids);
	while (seq_range_array_iter_nth(&iter, n++, &uid)) {
		const struct mail_index_record *rec;
		struct rbox_rs_flags *f;
		const char **kwnames;

		if (!mail_index_lookup_seq(view, uid, &seq))
			continue;
		rec = mail_index_lookup(view, seq);
		array_clear(&kw);
		mail_index_lookup_keywords(view, seq, &kw);
		f = array_append_space(&list);
		f->uid = uid;
		f->flags = rec->flags & ENUM_NEGATE(MAIL_RECENT);
		kwnames = t_new(const char *, array_count(&kw) + 1);
		for (i = 0; i < array_count(&kw); i++)
			kwnames[i] = array_idx_elem(names, *array_idx(&kw, i));
		f->keywords = kwnames;
		f->keyword_count = array_count(&kw);
	}
	mail_index_view_close(&view);
	if (array_count(&list) == 0)
		return;
	rbox_mailbox_ref(mbox, &ref);
	if (rbox_rs_set_flags(user, &ref, array_front(&list), array_count(&list),
			      &error) != RBOX_RS_OK)
		rbox_log_warning(box, "flags not mirrored into the omap index",
				 error);
}

int rbox_sync_finish(struct rbox_sync_context **_ctx, bool success)
{
	struct rbox_sync_context *ctx = *_ctx;
	int ret = success ? 0 : -1;

	*_ctx = NULL;
	if (success) {
		if (mail_index_sync_commit(&ctx->index_sync_ctx) < 0) {
			mailbox_set_index_error(&ctx->mbox->box);
			ret = -1;
		} else T_BEGIN {
			rbox_sync_mirror_flags(ctx);
		} T_END;
	} else {
		mail_index_sync_rollback(&ctx->index_sync_ctx);
	}
	rbox_sync_free(ctx);
	return ret;
}

/* ---- force-resync: adopt what RADOS holds ---- */

struct rbox_found {
	guid_128_t oid;
	uint32_t uid;
	guid_128_t guid;
	time_t received_date, save_date;
	bool in_index;
};
ARRAY_DEFINE_TYPE(rbox_found, struct rbox_found);

struct rbox_found_ctx {
	ARRAY_TYPE(rbox_found) found;
};

static void rbox_found_cb(void *context, const struct rbox_rs_found_mail *mail)
{
	struct rbox_found_ctx *fctx = context;
	struct rbox_found *f = array_append_space(&fctx->found);

	guid_128_copy(f->oid, mail->oid);
	f->uid = mail->uid;
	if (mail->guid == NULL || guid_128_from_string(mail->guid, f->guid) < 0)
		i_zero(&f->guid);
	f->received_date = (time_t)mail->received_date;
	f->save_date = (time_t)mail->save_date;
}

static int rbox_found_cmp_uid(const struct rbox_found *a,
			      const struct rbox_found *b)
{
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	return memcmp(a->oid, b->oid, sizeof(a->oid));
}

static struct rbox_found *
rbox_found_lookup(ARRAY_TYPE(rbox_found) *found, const guid_128_t oid)
{
	struct rbox_found *f;

	array_foreach_modifiable(found, f) {
		if (guid_128_equals(f->oid, oid))
			return f;
	}
	return NULL;
}

static int rbox_sync_rebuild(struct rbox_mailbox *mbox)
{
	struct mailbox *box = &mbox->box;
	struct rbox_sync_context *ctx;
	struct rbox_found_ctx fctx;
	struct rbox_rs_mailbox ref;
	struct rbox_rs_user *user;
	struct rbox_found *f;
	const struct mail_index_header *hdr;
	ARRAY(struct rbox_rs_expunge) gone;
	uint32_t seq, count, next_uid, last_uid = 0;
	char *error = NULL;
	int ret;

	user = rbox_storage_user(box->storage);
	if (user == NULL)
		return -1;
	i_array_init(&fctx.found, 64);
	rbox_mailbox_ref(mbox, &ref);
	ret = rbox_rs_list_mailbox(user, &ref, rbox_found_cb, &fctx, &error);
	if (ret != RBOX_RS_OK) {
		rbox_set_error(box->storage, ret, "listing the mailbox's objects",
			       error);
		array_free(&fctx.found);
		return -1;
	}
	if (rbox_sync_begin(mbox, &ctx, TRUE) < 0) {
		array_free(&fctx.found);
		return -1;
	}

	/* index entries whose object is gone: expunged (and their omap records
	   dropped through the usual expunge, which tolerates missing objects);
	   the rest is known */
	count = mail_index_view_get_messages_count(ctx->sync_view);
	t_array_init(&gone, 16);
	for (seq = 1; seq <= count; seq++) {
		const void *data;
		bool expunged;

		mail_index_lookup_ext(ctx->sync_view, seq, mbox->obox_ext_id,
				      &data, &expunged);
		f = data == NULL ? NULL :
			rbox_found_lookup(&fctx.found,
				((const struct rbox_mail_index_record *)data)->oid);
		if (f != NULL) {
			f->in_index = TRUE;
			continue;
		}
		mail_index_expunge(ctx->trans, seq);
		if (data != NULL) {
			struct rbox_rs_expunge *e = array_append_space(&gone);

			mail_index_lookup_uid(ctx->sync_view, seq, &e->uid);
			memcpy(e->oid,
			       ((const struct rbox_mail_index_record *)data)->oid,
			       sizeof(e->oid));
		}
	}
	if (array_count(&gone) > 0 &&
	    rbox_rs_expunge(user, &ref, array_front(&gone), array_count(&gone),
			    &error) != RBOX_RS_OK) {
		rbox_log_warning(box, "omap records of vanished mails not dropped",
				 error);
		error = NULL;
	}

	/* new objects: keep their U when it is above every UID the index
	   used and unique, else give the next free UID and rewrite U */
	hdr = mail_index_get_header(ctx->sync_view);
	next_uid = hdr->next_uid;
	array_sort(&fctx.found, rbox_found_cmp_uid);
	array_foreach_modifiable(&fctx.found, f) {
		struct rbox_mail_index_record rec;
		struct rbox_mail_dates dates;
		uint32_t uid = f->uid;

		if (f->in_index)
			continue;
		if (uid < next_uid || uid <= last_uid)
			uid = I_MAX(next_uid, last_uid + 1);
		/* M (and U when renumbered) now name this mailbox */
		if (rbox_rs_adopt(user, &ref, f->oid, uid, &error) != RBOX_RS_OK) {
			rbox_log_warning(box, t_strdup_printf(
				"object %s not adopted", guid_128_to_string(f->oid)),
				error);
			error = NULL;
			continue;
		}
		last_uid = uid;
		mail_index_append(ctx->trans, uid, &seq);
		i_zero(&rec);
		guid_128_copy(rec.guid, f->guid);
		guid_128_copy(rec.oid, f->oid);
		mail_index_update_ext(ctx->trans, seq, mbox->obox_ext_id, &rec, NULL);
		dates.received_date = (uint64_t)f->received_date;
		dates.save_date = (uint64_t)f->save_date;
		mail_index_update_ext(ctx->trans, seq, mbox->dates_ext_id,
				      &dates, NULL);
	}
	if (last_uid >= next_uid) {
		next_uid = last_uid + 1;
		mail_index_update_header(ctx->trans,
			offsetof(struct mail_index_header, next_uid),
			&next_uid, sizeof(next_uid), FALSE);
	}
	i_info("rbox: force-resync %s: %u object(s) in RADOS, %u in the index, next UID %u",
	       box->vname, array_count(&fctx.found), count, next_uid);
	array_free(&fctx.found);
	return rbox_sync_finish(&ctx, TRUE);
}

static int rbox_sync(struct rbox_mailbox *mbox, enum mailbox_sync_flags flags)
{
	struct rbox_sync_context *sync_ctx;

	if ((flags & MAILBOX_SYNC_FLAG_FORCE_RESYNC) != 0)
		return rbox_sync_rebuild(mbox);
	if (rbox_sync_begin(mbox, &sync_ctx, FALSE) < 0)
		return -1;
	return sync_ctx == NULL ? 0 : rbox_sync_finish(&sync_ctx, TRUE);
}

struct mailbox_sync_context *
rbox_storage_sync_init(struct mailbox *box, enum mailbox_sync_flags flags)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(box);
	int ret = 0;

	if (!box->opened) {
		if (mailbox_open(box) < 0)
			ret = -1;
	}
	if (ret == 0 && (index_mailbox_want_full_sync(box, flags) ||
			 (flags & MAILBOX_SYNC_FLAG_FORCE_RESYNC) != 0))
		ret = rbox_sync(mbox, flags);
	return index_mailbox_sync_init(box, flags, ret < 0);
}

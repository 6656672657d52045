/* Saving: bodies are buffered (LF line endings, as librmb stores them) until the
   transaction commits; then, under the index sync lock, UIDs are assigned and the Rust
   core writes every object with all its xattrs, U included, in one op each, before
   Dovecot's index commit makes the UIDs visible. A client is never shown a UID whose
   mail is not in Ceph. */

#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "istream.h"
#include "istream-crlf.h"
#include "ostream.h"
#include "str.h"
#include "index-mail.h"
#include "rbox-storage.h"

struct rbox_save_mail {
	uint32_t seq;
	guid_128_t oid, guid;
	/* a copy: the source object, copied in RADOS at commit (body == NULL) */
	guid_128_t src_oid;
	bool is_copy;
	const char *guid_text;
	buffer_t *body;
	time_t received_date, save_date;
	uint8_t flags;
	const char **keywords;
	unsigned int keyword_count;
	const char *pop3_uidl;
	uint32_t pop3_order;
};

struct rbox_save_context {
	struct mail_save_context ctx;

	struct rbox_mailbox *mbox;
	struct mail_index_transaction *trans;
	pool_t pool;
	ARRAY(struct rbox_save_mail) mails;
	struct rbox_sync_context *sync_ctx;

	/* the mail being saved */
	uint32_t seq;
	struct istream *input;
	struct mail *mail;

	bool failed:1;
	bool finished:1;
};

#define RBOX_SAVECTX(s) container_of(s, struct rbox_save_context, ctx)

struct mail_save_context *
rbox_save_alloc(struct mailbox_transaction_context *t)
{
	struct rbox_mailbox *mbox = RBOX_MAILBOX(t->box);
	struct rbox_save_context *ctx;

	i_assert((t->flags & MAILBOX_TRANSACTION_FLAG_EXTERNAL) != 0);

	if (t->save_ctx == NULL) {
		ctx = i_new(struct rbox_save_context, 1);
		ctx->ctx.transaction = t;
		ctx->mbox = mbox;
		ctx->trans = t->itrans;
		ctx->pool = pool_alloconly_create("rbox save", 1024);
		i_array_init(&ctx->mails, 8);
		t->save_ctx = &ctx->ctx;
	}
	return t->save_ctx;
}

static struct rbox_save_mail *rbox_save_add_mail(struct rbox_save_context *ctx);
static void rbox_save_set_metadata(struct rbox_save_context *ctx,
				   struct rbox_save_mail *m);

static struct rbox_save_mail *rbox_save_current(struct rbox_save_context *ctx)
{
	i_assert(array_count(&ctx->mails) > 0);
	return array_idx_modifiable(&ctx->mails, array_count(&ctx->mails) - 1);
}

int rbox_save_begin(struct mail_save_context *_ctx, struct istream *input)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);
	struct rbox_save_mail *m;
	struct istream *lf_input;

	ctx->failed = FALSE;
	ctx->finished = FALSE;

	m = rbox_save_add_mail(ctx);
	m->body = buffer_create_dynamic(default_pool, 4096);
	_ctx->data.output = o_stream_create_buffer(m->body);

	if (_ctx->dest_mail == NULL) {
		if (ctx->mail == NULL)
			ctx->mail = mail_alloc(_ctx->transaction, 0, NULL);
		_ctx->dest_mail = ctx->mail;
	}
	mail_set_seq_saving(_ctx->dest_mail, ctx->seq);

	lf_input = i_stream_create_lf(input);
	ctx->input = index_mail_cache_parse_init(_ctx->dest_mail, lf_input);
	i_stream_unref(&lf_input);
	return 0;
}

/* A new mail of the transaction in Dovecot's index: object id, GUID, flags, keywords. */
static struct rbox_save_mail *rbox_save_add_mail(struct rbox_save_context *ctx)
{
	struct mail_save_data *mdata = &ctx->ctx.data;
	struct rbox_mail_index_record rec;
	struct rbox_save_mail *m;

	m = array_append_space(&ctx->mails);
	/* Dovecot's order, as upstream: the object id first, the GUID next */
	guid_128_generate(m->oid);
	if (mdata->guid != NULL) {
		if (guid_128_from_string(mdata->guid, m->guid) < 0)
			m->guid_text = p_strdup(ctx->pool, mdata->guid);
	} else {
		guid_128_generate(m->guid);
	}

	mail_index_append(ctx->trans, mdata->uid, &ctx->seq);
	m->seq = ctx->seq;
	mail_index_update_flags(ctx->trans, ctx->seq, MODIFY_REPLACE,
				mdata->flags & ENUM_NEGATE(MAIL_RECENT));
	if (mdata->keywords != NULL) {
		mail_index_update_keywords(ctx->trans, ctx->seq, MODIFY_REPLACE,
					   mdata->keywords);
	}
	if (mdata->min_modseq != 0)
		mail_index_update_modseq(ctx->trans, ctx->seq, mdata->min_modseq);

	i_zero(&rec);
	guid_128_copy(rec.guid, m->guid);
	guid_128_copy(rec.oid, m->oid);
	mail_index_update_ext(ctx->trans, ctx->seq, ctx->mbox->obox_ext_id,
			      &rec, NULL);
	return m;
}

int rbox_save_continue(struct mail_save_context *_ctx)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);

	if (ctx->failed)
		return -1;
	if (index_storage_save_continue(_ctx, ctx->input, _ctx->dest_mail) < 0) {
		ctx->failed = TRUE;
		return -1;
	}
	return 0;
}

static void rbox_save_copy_keywords(struct rbox_save_context *ctx,
				    struct rbox_save_mail *m,
				    const struct mail_keywords *kw)
{
	const ARRAY_TYPE(keywords) *names;
	unsigned int i;

	if (kw == NULL || kw->count == 0)
		return;
	names = mail_index_get_keywords(ctx->mbox->box.index);
	m->keywords = p_new(ctx->pool, const char *, kw->count);
	for (i = 0; i < kw->count; i++) {
		m->keywords[i] = p_strdup(ctx->pool,
					  array_idx_elem(names, kw->idx[i]));
	}
	m->keyword_count = kw->count;
}

int rbox_save_finish(struct mail_save_context *_ctx)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);
	struct mail_save_data *mdata = &_ctx->data;
	struct rbox_save_mail *m = rbox_save_current(ctx);

	ctx->finished = TRUE;
	if (_ctx->data.output != NULL) {
		if (!ctx->failed && o_stream_finish(_ctx->data.output) < 0) {
			mail_set_critical(_ctx->dest_mail,
				"rbox: buffering the mail failed: %s",
				o_stream_get_error(_ctx->data.output));
			ctx->failed = TRUE;
		}
		o_stream_destroy(&_ctx->data.output);
	}
	rbox_save_set_metadata(ctx, m);

	index_mail_cache_parse_deinit(_ctx->dest_mail, mdata->received_date,
				      !ctx->failed);
	if (ctx->input != NULL)
		i_stream_unref(&ctx->input);

	if (ctx->failed) {
		buffer_free(&m->body);
		array_delete(&ctx->mails, array_count(&ctx->mails) - 1, 1);
		index_storage_save_abort_last(_ctx, ctx->seq);
	}
	index_save_context_free(_ctx);
	return ctx->failed ? -1 : 0;
}

/* Dates, flags, keywords and POP3 data of the mail being added, from the save data. */
static void rbox_save_set_metadata(struct rbox_save_context *ctx,
				   struct rbox_save_mail *m)
{
	struct mail_save_data *mdata = &ctx->ctx.data;
	struct rbox_mail_dates dates;

	if (mdata->received_date == (time_t)-1)
		mdata->received_date = ioloop_time;
	m->received_date = mdata->received_date;
	m->save_date = mdata->save_date != (time_t)-1 ? mdata->save_date :
		ioloop_time;
	m->flags = (uint8_t)(mdata->flags & ENUM_NEGATE(MAIL_RECENT));
	rbox_save_copy_keywords(ctx, m, mdata->keywords);
	if (mdata->pop3_uidl != NULL)
		m->pop3_uidl = p_strdup(ctx->pool, mdata->pop3_uidl);
	m->pop3_order = mdata->pop3_order;

	if (!ctx->failed) {
		dates.received_date = (uint64_t)m->received_date;
		dates.save_date = (uint64_t)m->save_date;
		mail_index_update_ext(ctx->trans, ctx->seq,
				      ctx->mbox->dates_ext_id, &dates, NULL);
	}
}

/* COPY/MOVE between mailboxes of one rbox storage: the object is copied in RADOS at
   commit (by the Rust core: read and write there, never through Dovecot's parser or the
   client), with the mail's GUID, received date and sizes kept (the save date is now's). MOVE is this copy plus Dovecot's
   expunge of the source, as librmb does it. */
int rbox_save_copy(struct mail_save_context *_ctx, struct mail *mail)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);
	struct rbox_mail_index_record src;
	struct rbox_save_mail *m;
	const char *guid;
	time_t received;

	ctx->finished = TRUE;
	ctx->failed = FALSE;
	if (rbox_mail_lookup(mail, &src) < 0 ||
	    mail_get_received_date(mail, &received) < 0 ||
	    mail_get_special(mail, MAIL_FETCH_GUID, &guid) < 0) {
		/* same storage: the error is already set where the caller looks */
		index_save_context_free(_ctx);
		return -1;
	}
	if (_ctx->data.guid == NULL)
		mailbox_save_set_guid(_ctx, guid);
	if (_ctx->data.received_date == (time_t)-1)
		_ctx->data.received_date = received;

	m = rbox_save_add_mail(ctx);
	m->is_copy = TRUE;
	guid_128_copy(m->src_oid, src.oid);
	rbox_save_set_metadata(ctx, m);
	index_copy_cache_fields(_ctx, mail, ctx->seq);
	if (_ctx->dest_mail != NULL)
		mail_set_seq_saving(_ctx->dest_mail, ctx->seq);
	index_save_context_free(_ctx);
	return 0;
}

void rbox_save_cancel(struct mail_save_context *_ctx)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);

	ctx->failed = TRUE;
	(void)rbox_save_finish(_ctx);
}

bool rbox_save_get_copy_source(struct mail_save_context *_ctx, uint32_t seq,
			       guid_128_t src_oid_r)
{
	struct rbox_save_context *ctx;
	const struct rbox_save_mail *m;

	if (_ctx->transaction == NULL)
		return FALSE;
	ctx = RBOX_SAVECTX(_ctx);
	array_foreach(&ctx->mails, m) {
		if (m->seq == seq && m->is_copy) {
			guid_128_copy(src_oid_r, m->src_oid);
			return TRUE;
		}
	}
	return FALSE;
}

const buffer_t *rbox_save_get_body(struct mail_save_context *_ctx, uint32_t seq)
{
	struct rbox_save_context *ctx;
	const struct rbox_save_mail *m;

	/* only our save contexts exist in rbox mailboxes' transactions */
	if (_ctx->transaction == NULL)
		return NULL;
	ctx = RBOX_SAVECTX(_ctx);
	array_foreach(&ctx->mails, m) {
		if (m->seq == seq)
			return m->body;
	}
	return NULL;
}

/* Write the transaction's mails to Ceph now that their UIDs are known. */
static int rbox_save_write(struct rbox_save_context *ctx,
			   const ARRAY_TYPE(seq_range) *uids)
{
	struct rbox_mailbox *mbox = ctx->mbox;
	struct rbox_rs_user *user;
	struct rbox_rs_mailbox ref;
	struct rbox_rs_save_mail *out;
	struct rbox_save_mail *m;
	struct seq_range_iter iter;
	struct rbox_mail_index_record rec;
	char *error = NULL;
	unsigned int n = 0, count = array_count(&ctx->mails);
	uint32_t uid;
	int ret;

	if (count == 0)
		return 0;
	user = rbox_storage_user(mbox->box.storage);
	if (user == NULL)
		return -1;

	out = t_new(struct rbox_rs_save_mail, count);
	seq_range_array_iter_init(&iter, uids);
	array_foreach_modifiable(&ctx->mails, m) {
		if (!seq_range_array_iter_nth(&iter, n, &uid))
			i_unreached();
		out[n].uid = uid;
		memcpy(out[n].oid, m->oid, sizeof(out[n].oid));
		memcpy(out[n].guid, m->guid, sizeof(out[n].guid));
		out[n].guid_text = m->guid_text;
		if (m->is_copy) {
			out[n].src_oid = m->src_oid;
		} else {
			out[n].data = m->body->data;
			out[n].size = m->body->used;
		}
		out[n].received_date = m->received_date;
		out[n].save_date = m->save_date;
		out[n].flags = m->flags;
		out[n].keywords = m->keywords;
		out[n].keyword_count = m->keyword_count;
		out[n].pop3_uidl = m->pop3_uidl;
		out[n].pop3_order = m->pop3_order;
		n++;
	}
	rbox_mailbox_ref(mbox, &ref);
	ret = rbox_rs_save(user, &ref, out, count, &error);
	if (ret != RBOX_RS_OK) {
		rbox_set_error(mbox->box.storage, ret,
			t_strdup_printf("saving %u mail(s) to %s", count,
					mbox->box.vname), error);
		return -1;
	}

	n = 0;
	array_foreach_modifiable(&ctx->mails, m) {
		if (memcmp(out[n].oid, m->oid, sizeof(m->oid)) != 0) {
			/* an object id collision made Rust pick another */
			guid_128_copy(m->oid, out[n].oid);
			i_zero(&rec);
			guid_128_copy(rec.guid, m->guid);
			guid_128_copy(rec.oid, m->oid);
			mail_index_update_ext(ctx->trans, m->seq,
					      mbox->obox_ext_id, &rec, NULL);
		}
		n++;
	}
	return 0;
}

int rbox_transaction_save_commit_pre(struct mail_save_context *_ctx)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);
	struct mailbox_transaction_context *_t = _ctx->transaction;
	const struct mail_index_header *hdr;
	int ret;

	i_assert(ctx->finished);

	if (rbox_sync_begin(ctx->mbox, &ctx->sync_ctx, TRUE) < 0) {
		ctx->failed = TRUE;
		rbox_transaction_save_rollback(_ctx);
		return -1;
	}
	hdr = mail_index_get_header(ctx->sync_ctx->sync_view);
	mail_index_append_finish_uids(ctx->trans, hdr->next_uid,
				      &_t->changes->saved_uids);
	_t->changes->uid_validity = ctx->sync_ctx->uid_validity;

	T_BEGIN {
		ret = rbox_save_write(ctx, &_t->changes->saved_uids);
	} T_END;
	if (ret < 0) {
		ctx->failed = TRUE;
		rbox_transaction_save_rollback(_ctx);
		return -1;
	}
	if (ctx->mail != NULL)
		mail_free(&ctx->mail);
	return 0;
}

void rbox_transaction_save_commit_post(struct mail_save_context *_ctx,
				       struct mail_index_transaction_commit_result *result)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);

	_ctx->transaction = NULL; /* already freed */
	mail_index_sync_set_commit_result(ctx->sync_ctx->index_sync_ctx, result);
	(void)rbox_sync_finish(&ctx->sync_ctx, TRUE);
	rbox_transaction_save_rollback(_ctx);
}

void rbox_transaction_save_rollback(struct mail_save_context *_ctx)
{
	struct rbox_save_context *ctx = RBOX_SAVECTX(_ctx);
	struct rbox_save_mail *m;

	if (!ctx->finished)
		rbox_save_cancel(_ctx);
	if (ctx->sync_ctx != NULL)
		(void)rbox_sync_finish(&ctx->sync_ctx, FALSE);
	if (ctx->mail != NULL)
		mail_free(&ctx->mail);
	array_foreach_modifiable(&ctx->mails, m) {
		if (m->body != NULL)
			buffer_free(&m->body);
	}
	array_free(&ctx->mails);
	pool_unref(&ctx->pool);
	i_free(ctx);
}

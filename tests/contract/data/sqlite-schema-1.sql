-- A SQLite file as lampo's schema 1 wrote it (sqlite3's .dump of it), for the upgrade test
-- (tests/contract/test_payment_ids.py). Made by that code: event "fest", alice and bruno
-- both paid with payment id psp-1 (what schema 1 allowed), carla paid with psp-2 and then
-- refunded, dario's hold still held.
BEGIN TRANSACTION;
CREATE TABLE counters (
    event TEXT NOT NULL, customer TEXT NOT NULL, sku TEXT NOT NULL,
    units INTEGER NOT NULL CHECK (units >= 0),
    PRIMARY KEY (event, customer, sku)
) WITHOUT ROWID;
CREATE TABLE events (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, definition TEXT NOT NULL
);
INSERT INTO "events" VALUES('fest',1796272378967433,'{"categories": {"phone": {"name": "Phone", "unit": "units"}, "tv": {"name": "Tv", "unit": "units"}}, "format": 1, "fx": {"on": "2015-04-08", "rates": {"INR": "1/10"}, "reporting": "CNY"}, "hold_seconds": 900, "id": "fest", "limit_per_customer": null, "markets": {"CN": {"currency": "CNY", "name": "China", "tz": "Asia/Shanghai"}, "IN": {"currency": "INR", "name": "India", "tz": "Asia/Kolkata"}}, "milestones": [], "name": "Test sale fest", "offers": {"phone-red": {"allocation": 10, "limit_per_customer": null, "prices": {"CN": [79900, "CNY"], "IN": [699900, "INR"]}}, "tv-55": {"allocation": 3, "limit_per_customer": null, "prices": {"CN": [179900, "CNY"], "IN": [1699900, "INR"]}}}, "skus": {"phone-red": {"category": "phone", "name": "phone-red", "product": "phone-product"}, "tv-55": {"category": "tv", "name": "tv-55", "product": "tv-product"}}, "windows": {"CN": {"closes": "2015-04-08T14:00:00+00:00", "opens": "2015-04-08T02:00:00+00:00"}, "IN": {"closes": "2015-04-08T16:30:00+00:00", "opens": "2015-04-08T04:30:00+00:00"}}}');
CREATE TABLE holds (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, customer TEXT NOT NULL, market TEXT NOT NULL,
    channel_kind TEXT NOT NULL, channel_name TEXT NOT NULL, referral TEXT NOT NULL,
    currency TEXT NOT NULL, lines TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL,
    payment_id TEXT NOT NULL, paid_at INTEGER, ended_at INTEGER, refunded_at INTEGER
);
INSERT INTO "holds" VALUES('6470e4797a63b5a1e386e791f6f2db70','fest','alice','CN','online','','','CNY','[["phone-red",1,79900]]',1428472800000000,1428473700000000,'paid','psp-1',1428472800000000,1428472800000000,NULL);
INSERT INTO "holds" VALUES('f3bbea608c7f212b9fa4fe2870d69aa6','fest','bruno','CN','online','','','CNY','[["phone-red",2,79900]]',1428472800000000,1428473700000000,'paid','psp-1',1428472805000000,1428472805000000,NULL);
INSERT INTO "holds" VALUES('60fca9623b62a7ee26c8bbb1cc89343a','fest','carla','IN','online','','','INR','[["tv-55",1,1699900]]',1428472800000000,1428473700000000,'refunded','psp-2',1428472805000000,1428472805000000,1428472810000000);
INSERT INTO "holds" VALUES('55c4fc8e8d06acd10dedfa1db7d64af3','fest','dario','CN','online','','','CNY','[["tv-55",1,179900]]',1428472800000000,1428473700000000,'held','',NULL,NULL,NULL);
CREATE TABLE idem (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, hold_id TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO "idem" VALUES('fest:alice:a1','178ef39afdcc3066444699f0','6470e4797a63b5a1e386e791f6f2db70');
INSERT INTO "idem" VALUES('fest:bruno:b1','a6884fd0a885cf4792fd4cae','f3bbea608c7f212b9fa4fe2870d69aa6');
INSERT INTO "idem" VALUES('fest:carla:c1','c2f60efc6bab4a1250d2ad33','60fca9623b62a7ee26c8bbb1cc89343a');
INSERT INTO "idem" VALUES('fest:dario:d1','284fbab327895263eaa35305','55c4fc8e8d06acd10dedfa1db7d64af3');
CREATE TABLE line_totals (
    event TEXT NOT NULL, sku TEXT NOT NULL, market TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, referral TEXT NOT NULL,
    units INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (event, sku, market, kind, name, referral)
) WITHOUT ROWID;
INSERT INTO "line_totals" VALUES('fest','phone-red','CN','online','','',3,239700);
INSERT INTO "line_totals" VALUES('fest','tv-55','IN','online','','',0,0);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','1');
CREATE TABLE order_totals (
    event TEXT NOT NULL, market TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, referral TEXT NOT NULL,
    orders INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (event, market, kind, name, referral)
) WITHOUT ROWID;
INSERT INTO "order_totals" VALUES('fest','CN','online','','',2,239700);
INSERT INTO "order_totals" VALUES('fest','IN','online','','',0,0);
CREATE TABLE stock (
    event TEXT NOT NULL, sku TEXT NOT NULL,
    allocation INTEGER NOT NULL, available INTEGER NOT NULL,
    held INTEGER NOT NULL, sold INTEGER NOT NULL,
    PRIMARY KEY (event, sku),
    CHECK (available >= 0 AND held >= 0 AND sold >= 0
           AND available + held + sold = allocation)
) WITHOUT ROWID;
INSERT INTO "stock" VALUES('fest','phone-red',10,7,0,3);
INSERT INTO "stock" VALUES('fest','tv-55',3,2,1,0);
CREATE INDEX holds_due ON holds (event, expires_at) WHERE state = 'held';
CREATE INDEX holds_event ON holds (event);
COMMIT;

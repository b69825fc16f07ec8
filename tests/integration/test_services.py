"""The test fixtures reach the real servers and give each test its own database."""


def test_each_postgres_test_gets_its_own_empty_database(pg_url):
    import psycopg

    with psycopg.connect(pg_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[0]
    assert name.startswith("portl_test_") and tables == 0


def test_each_mysql_test_gets_its_own_empty_database(mysql_url):
    import pymysql

    database = mysql_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=database)
    with conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
    conn.close()

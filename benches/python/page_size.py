"""Fill the bookings schema of an existing synced database (argv[3]) to argv[2] rows at page size
argv[1], in INSERT groups of 5,000, printing rows/s as the table grows (BENCHMARKS.md, "Page size").

Usage: python page_size.py PAGE_SIZE TOTAL_ROWS SOURCE_DB
"""
import sqlite3, time, os, sys
src=sys.argv[3]
schema=[r[0] for r in sqlite3.connect(src).execute("select sql from sqlite_master where tbl_name='bookings' and sql is not null")]
rows=sqlite3.connect(src).execute('select * from bookings order by rowid').fetchall()
cols=len(rows[0])
ps=int(sys.argv[1]); total=int(sys.argv[2])
f=f'page-size-{ps}.sqlite'
for s in ('','-wal','-shm'):
    try: os.remove(f+s)
    except: pass
c=sqlite3.connect(f, isolation_level=None)
c.execute(f'pragma page_size={ps}'); c.execute('pragma journal_mode=wal'); c.execute('pragma synchronous=normal'); c.execute('pragma cache_size=-8192'); c.execute(f'pragma wal_autocheckpoint={40*1024*1024//ps}'); c.execute('pragma temp_store=memory')
for q in schema: c.execute(q)
ins=f"insert into bookings values ({','.join('?'*cols)})"
t=time.time(); t0=os.times(); n=0
for rnd in range(total//len(rows)):
    for off in range(0,len(rows),5000):
        batch=[(r[0]+f'-{rnd}',)+tuple(r[1:]) for r in rows[off:off+5000]]
        c.execute('begin'); c.executemany(ins,batch); c.execute('commit'); n+=len(batch)
    el=time.time()-t
    print(ps, n, f'{n/el:.0f} rows/s cumulative', flush=True)
t1=os.times()
print(ps, f'{n/(time.time()-t):.0f} rows/s', f'user {t1.user-t0.user:.2f} sys {t1.system-t0.system:.2f}', os.path.getsize(f)//1024//1024,'MiB')

"""The portal's landing and donor search pages on Flask, hardened as the seed article prescribes.

Benchmark counterpart of `buttress serve` (see scripts/bench and bench/RESULTS.md):

* Flask-Talisman: the article's CSP (default-src 'self'; script-src 'self' + jsdelivr;
  style-src 'self' 'unsafe-inline'), with a per-request nonce on script-src because the pages
  carry one inline script, as the portal's do; HSTS one year. ``force_https=False`` ONLY
  because the benchmark runs over plain HTTP on loopback (the article has True; the Buttress
  side likewise runs Development on loopback, where its HTTPS redirect is off).
* Flask-WTF ``CSRFProtect`` on every unsafe request; the sign-in form carries ``csrf_token()``.
* Flask-Limiter, in-memory storage, keyed by remote address: the article's default
  ``200 per day; 50 per hour`` unless ``BENCH_LIMITS`` is set, and ``5 per minute`` on the
  sign-in POST. scripts/bench sets ``BENCH_LIMITS`` very high (same two windows) so the limiter
  runs on every request without throttling the load; the Buttress side keeps its limiter on
  with equally high limits. Under gunicorn each worker has its own memory storage.
* Cookies: Secure, HttpOnly, SameSite=Lax, 30-minute lifetime (the article's settings).
* Flask-SQLAlchemy over SQLite (``BENCH_DB``), ORM queries only (parameterised).

Seed first (once, before gunicorn starts its workers)::

    BENCH_DB=/tmp/donors.sqlite3 python app.py seed 1000

Then run::

    SECRET_KEY=... BENCH_DB=/tmp/donors.sqlite3 gunicorn -w 2 -k sync -b 127.0.0.1:8001 app:app
"""

import datetime
import math
import os
import random
import sys

from flask import Flask, abort, redirect, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

PAGE_SIZE = 20
ELIGIBILITY_DAYS = 56
GROUPS = ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"]
# Which donor groups each recipient group can receive red cells from.
COMPATIBLE = {
    "O-": ["O-"],
    "O+": ["O-", "O+"],
    "A-": ["O-", "A-"],
    "A+": ["O-", "O+", "A-", "A+"],
    "B-": ["O-", "B-"],
    "B+": ["O-", "O+", "B-", "B+"],
    "AB-": ["O-", "A-", "B-", "AB-"],
    "AB+": GROUPS,
}

app = Flask(__name__)

# Phase 1 of the article: debug from the environment, secret key required.
app.config["DEBUG"] = os.environ.get("FLASK_DEBUG", "False").lower() in ("true", "1")
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY")
if not app.config["SECRET_KEY"] and sys.argv[1:2] != ["seed"]:
    raise RuntimeError("SECRET_KEY environment variable is not set!")

# Phase 3: cookies.
app.config["SESSION_COOKIE_SECURE"] = True
app.config["SESSION_COOKIE_HTTPONLY"] = True
app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
app.config["PERMANENT_SESSION_LIFETIME"] = datetime.timedelta(minutes=30)

app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.abspath(
    os.environ.get("BENCH_DB", "donors.sqlite3")
)
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False

# Phase 2: headers.
csp = {
    "default-src": "'self'",
    "script-src": ["'self'", "https://cdn.jsdelivr.net"],
    "style-src": ["'self'", "'unsafe-inline'"],
}
talisman = Talisman(
    app,
    content_security_policy=csp,
    content_security_policy_nonce_in=["script-src"],
    force_https=False,  # benchmark over plain HTTP on loopback; the article has True
    strict_transport_security=True,
    strict_transport_security_max_age=31536000,
)

# Phase 4: SQLAlchemy and CSRF.
db = SQLAlchemy(app)
csrf = CSRFProtect(app)

# Phase 5: rate limits.
default_limits = [
    part.strip()
    for part in os.environ.get("BENCH_LIMITS", "200 per day; 50 per hour").split(";")
    if part.strip()
]
limiter = Limiter(
    get_remote_address,
    app=app,
    default_limits=default_limits,
    storage_uri="memory://",
)


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(254), unique=True, nullable=False)
    password_hash = db.Column(db.String(255), nullable=False)


class Donor(db.Model):
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), primary_key=True)
    display_name = db.Column(db.String(80), nullable=False)
    blood_group = db.Column(db.String(3), nullable=False)
    city = db.Column(db.String(80), nullable=False)
    city_key = db.Column(db.String(80), nullable=False)
    phone = db.Column(db.String(20), nullable=False)
    last_donation = db.Column(db.Date, nullable=True)
    available = db.Column(db.Boolean, nullable=False)
    updated_at = db.Column(db.Integer, nullable=False)
    __table_args__ = (db.Index("donor_search", "city_key", "blood_group", "available"),)


class BloodRequest(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    owner_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    blood_group = db.Column(db.String(3), nullable=False)
    city = db.Column(db.String(80), nullable=False)
    hospital = db.Column(db.String(120), nullable=False)
    units = db.Column(db.Integer, nullable=False)
    urgency = db.Column(db.String(10), nullable=False)
    status = db.Column(db.String(10), nullable=False, default="open")
    created_at = db.Column(db.Integer, nullable=False)


def city_key(city):
    return " ".join(city.split()).casefold()


def current_user():
    user_id = session.get("user_id")
    return db.session.get(User, user_id) if user_id is not None else None


def eligibility(donor, today):
    if donor.last_donation is None:
        return "Yes"
    start = donor.last_donation + datetime.timedelta(days=ELIGIBILITY_DAYS)
    return "Yes" if start <= today else "From " + start.isoformat()


@app.route("/")
def landing():
    query = BloodRequest.query.filter_by(status="open")
    total = query.count()
    requests = (
        query.order_by(BloodRequest.created_at.desc(), BloodRequest.id)
        .limit(PAGE_SIZE)
        .all()
    )
    return render_template(
        "landing.html", user=current_user(), requests=requests, total=total
    )


@app.route("/donors")
def search():
    user = current_user()
    args = request.args
    if not any(args.values()):
        return render_template("search.html", user=user, form=args, groups=GROUPS, page=None)
    group = args.get("blood_group", "").strip().upper().replace(" ", "")
    mode = args.get("mode", "exact").strip() or "exact"
    city = args.get("city", "")
    if (group and group not in GROUPS) or mode not in ("exact", "compatible") or len(city) > 80:
        abort(422)
    groups = GROUPS if not group else (COMPATIBLE[group] if mode == "compatible" else [group])
    today = datetime.date.today()
    query = Donor.query.filter(Donor.available.is_(True), Donor.blood_group.in_(groups))
    if city.strip():
        query = query.filter(Donor.city_key == city_key(city))
    if args.get("eligible_only") in ("on", "true", "1", "yes"):
        cutoff = today - datetime.timedelta(days=ELIGIBILITY_DAYS)
        query = query.filter(
            db.or_(Donor.last_donation.is_(None), Donor.last_donation <= cutoff)
        )
    total = query.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        number = min(max(int(args.get("page", "1")), 1), pages)
    except ValueError:
        number = 1
    donors = (
        query.order_by(Donor.updated_at.desc(), Donor.user_id)
        .limit(PAGE_SIZE)
        .offset((number - 1) * PAGE_SIZE)
        .all()
    )
    rows = [
        {
            "name": d.display_name,
            "group": d.blood_group,
            "city": d.city,
            "eligibility": eligibility(d, today),
            "phone": d.phone if user else None,
        }
        for d in donors
    ]
    page = {"items": rows, "total": total, "page": number, "total_pages": pages}
    return render_template("search.html", user=user, form=args, groups=GROUPS, page=page)


@app.route("/login", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
def login():
    if request.method == "POST":
        user = User.query.filter_by(email=request.form.get("email", "").strip().lower()).first()
        if user and check_password_hash(user.password_hash, request.form.get("password", "")):
            session.clear()
            session.permanent = True
            session["user_id"] = user.id
            return redirect("/donors", code=303)
        return render_template("login.html", user=None, error=True), 401
    return render_template("login.html", user=current_user(), error=False)


@app.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect("/", code=303)


FIRST = ["Ada", "Amina", "Arjun", "Bea", "Carlos", "Chen", "Dana", "Farhan", "Fatima", "Grace",
         "Hiro", "Ines", "Jamal", "Karin", "Leila", "Mateo", "Nadia", "Olu", "Priya", "Rafi",
         "Sara", "Tariq", "Uma", "Yusuf", "Zoe"]
LAST = ["Ahmed", "Banerjee", "Costa", "Dubois", "Eze", "Fischer", "García", "Haque", "Ito",
        "Jensen", "Kamau", "Lopez", "Müller", "Nowak", "Okafor", "Patel", "Rahman", "Silva",
        "Tanaka", "Wong"]
CITIES = ["Dhaka", "Chattogram", "London", "Manchester", "Lagos", "Nairobi", "Mumbai",
          "São Paulo", "Toronto", "Berlin", "Sydney", "Leeds"]
# Per mille, as the portal's seed (crates/buttress-portal/src/seed.rs).
FREQUENCIES = [("O+", 374), ("A+", 357), ("B+", 85), ("O-", 66), ("A-", 63), ("AB+", 34),
               ("B-", 15), ("AB-", 6)]


def seed(n):
    """n demo donors with the portal seed's distributions, plus one account that can sign in
    (BENCH_EMAIL / BENCH_PASSWORD)."""
    rng = random.Random(0x00B100D5)
    today = datetime.date.today()
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    with app.app_context():
        db.drop_all()
        db.create_all()
        for i in range(n):
            roll = rng.randrange(1000)
            group = "O+"
            for g, per_mille in FREQUENCIES:
                if roll < per_mille:
                    group = g
                    break
                roll -= per_mille
            r = rng.randrange(100)
            if r < 30:
                last = today - datetime.timedelta(days=rng.randrange(0, 56))
            elif r < 75:
                last = today - datetime.timedelta(days=rng.randrange(56, 365))
            else:
                last = None
            city = rng.choice(CITIES)
            user = User(id=i + 1, email=f"demo-{i}@example.org", password_hash="!demo")
            db.session.add(user)
            db.session.add(Donor(
                user_id=user.id,
                display_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                blood_group=group,
                city=city,
                city_key=city_key(city),
                phone=f"+447700900{rng.randrange(1000):03}",
                last_donation=last,
                available=rng.randrange(100) < 85,
                updated_at=now - i,
            ))
        db.session.add(User(
            id=n + 1,
            email=os.environ.get("BENCH_EMAIL", "bench@example.org"),
            password_hash=generate_password_hash(
                os.environ.get("BENCH_PASSWORD", "correct horse battery staple")
            ),
        ))
        db.session.commit()


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    else:
        sys.exit(__doc__)

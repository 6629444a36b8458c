/* test-ctok.vala: ctok from Vala, through the generated ctok-1.vapi
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

const string MY_ERROR = "my-error";

static Error custom_error (int code = 7, string message = "custom") {
    return new Error (Quark.from_string (MY_ERROR), code, message);
}

static void assert_reason (Ctok.Token token, Quark domain, int code) {
    try {
        token.set_error_if_cancelled ();
        assert_not_reached ();
    } catch (Error e) {
        assert_true (e.matches (domain, code));
    }
}

static void test_sources () {
    var source = new Ctok.TokenSource ();
    unowned Ctok.Token token = source.get_token ();

    assert_true (source.get_token () == token);
    assert_false (token.is_cancelled ());
    assert_false (token.cancelled);
    assert_true (token.can_be_cancelled ());
    assert_true (token.dup_error () == null);
    assert_true (token.get_timeout_ms () == -1);
    assert_true (token.get_deadline () == int64.MAX);
    try {
        assert_false (token.set_error_if_cancelled ());
    } catch (Error e) {
        assert_not_reached ();
    }

    source.cancel ();
    assert_true (source.is_cancelled ());
    assert_true (token.cancelled);
    assert_reason (token, IOError.quark (), IOError.CANCELLED);
    assert_true (token.get_cancellable ().is_cancelled ());

    /* The none token */
    unowned Ctok.Token none = Ctok.Token.get_none ();
    assert_false (none.can_be_cancelled ());
    assert_true (none.get_cancellable () == null);
    assert_false (none.wait (-1));
}

static void test_reasons () {
    /* A custom reason, in its own domain; the first one wins. */
    var source = new Ctok.TokenSource ();
    source.cancel_with_error (custom_error ());
    source.cancel ();
    assert_reason (source.get_token (), Quark.from_string (MY_ERROR), 7);

    try {
        source.get_token ().set_error_if_cancelled ();
        assert_not_reached ();
    } catch (IOError e) {
        assert_not_reached ();
    } catch (Error e) {
        assert_true (e.message == "custom");
    }

    /* A deadline: TIMED_OUT */
    var expired = new Ctok.TokenSource.with_timeout (0);
    try {
        expired.get_token ().set_error_if_cancelled ();
        assert_not_reached ();
    } catch (IOError.TIMED_OUT e) {
        assert_true (e.message == "Deadline exceeded");
    } catch (Error e) {
        assert_not_reached ();
    }

    /* translate_error() gives GIO's CANCELLED the token's reason. */
    var cancelled = new IOError.CANCELLED ("Operation was cancelled");
    var reason = source.get_token ().translate_error (cancelled);
    assert_true (reason.matches (Quark.from_string (MY_ERROR), 7));
    var not_found = new IOError.NOT_FOUND ("No such file");
    assert_true (source.get_token ().translate_error (not_found) is IOError.NOT_FOUND);
}

static void test_linked () {
    var user = new Ctok.TokenSource ();
    var shutdown = new Ctok.TokenSource ();
    var any = new Ctok.TokenSource.linked ({ user.get_token (), shutdown.get_token () });
    var all = new Ctok.TokenSource.linked_all ({ user.get_token (), shutdown.get_token () });

    shutdown.cancel_with_error (custom_error (3, "shutdown"));
    assert_true (any.is_cancelled ());
    assert_reason (any.get_token (), Quark.from_string (MY_ERROR), 3);
    assert_false (all.is_cancelled ());
    assert_false (user.is_cancelled ());

    user.cancel ();
    assert_true (all.is_cancelled ());
    assert_reason (all.get_token (), IOError.quark (), IOError.CANCELLED);

    /* Nothing to link to: a plain source */
    var plain = new Ctok.TokenSource.linked (null);
    assert_false (plain.is_cancelled ());

    var cancellable = new Cancellable ();
    var follower = new Ctok.TokenSource.linked_to_cancellable (cancellable);
    assert_false (follower.is_cancelled ());
    cancellable.cancel ();
    assert_reason (follower.get_token (), IOError.quark (), IOError.CANCELLED);

    /* Closed children leave nothing on the parent. */
    var parent = new Ctok.TokenSource ();
    for (int i = 0; i < 1000; i++) {
        var child = new Ctok.TokenSource.linked ({ parent.get_token () });
        if (i % 2 == 0)
            child.close ();
    }
    assert_true (parent.get_token ().debug_count_registrations () == 0);
}

static void test_deadlines () {
    int64 start = get_monotonic_time ();
    var request = new Ctok.TokenSource.with_timeout (50);
    var user = new Ctok.TokenSource ();
    var operation = new Ctok.TokenSource.linked ({ user.get_token (), request.get_token () });
    unowned Ctok.Token token = operation.get_token ();

    int64 deadline = request.get_deadline ();
    assert_true (deadline >= start + 50000);
    assert_true (token.get_deadline () == deadline);
    assert_true (token.deadline == deadline);
    assert_true (operation.get_deadline () == int64.MAX);
    int ms = token.get_timeout_ms ();
    assert_true (ms > 0 && ms <= 50);

    assert_true (token.wait (10 * TimeSpan.SECOND));
    assert_true (get_monotonic_time () - start >= 50000);
    assert_reason (token, IOError.quark (), IOError.TIMED_OUT);
    assert_false (user.is_cancelled ());

    var moved = new Ctok.TokenSource ();
    moved.cancel_after (60000);
    assert_true (moved.get_token ().get_timeout_ms () > 59000);
    moved.cancel_at (int64.MAX);
    assert_true (moved.get_deadline () == int64.MAX);
    moved.cancel_after (0);
    assert_reason (moved.get_token (), IOError.quark (), IOError.TIMED_OUT);

    var born = new Ctok.TokenSource.with_deadline (get_monotonic_time () - 1);
    assert_true (born.is_cancelled ());
}

static void test_register_in_context () {
    var loop = new MainLoop ();
    var source = new Ctok.TokenSource.with_timeout (20);
    unowned Thread<void*> main_thread = Thread.self<void*> ();
    bool called = false;

    /* A deadline fires on ctok's timer thread; the callback runs here. */
    source.get_token ().register_in_context (null, (token) => {
        assert_true (Thread.self<void*> () == main_thread);
        assert_true (token.is_cancelled ());
        called = true;
        loop.quit ();
    });
    loop.run ();
    assert_true (called);
}

static async bool wait_for (Ctok.Token token) throws Error {
    return yield token.wait_async (null);
}

static void test_wait_async () {
    var loop = new MainLoop ();
    var source = new Ctok.TokenSource.with_timeout (20);
    bool result = false;

    wait_for.begin (source.get_token (), (obj, res) => {
        try {
            result = wait_for.end (res);
        } catch (Error e) {
            assert_not_reached ();
        }
        loop.quit ();
    });
    loop.run ();
    assert_true (result);
}

int main (string[] args) {
    Test.init (ref args);

    assert_true (Ctok.check_version (1, 0, 0));
    assert_true (Ctok.get_major_version () == Ctok.MAJOR_VERSION);

    Test.add_func ("/vala/sources", test_sources);
    Test.add_func ("/vala/reasons", test_reasons);
    Test.add_func ("/vala/linked", test_linked);
    Test.add_func ("/vala/deadlines", test_deadlines);
    Test.add_func ("/vala/register-in-context", test_register_in_context);
    Test.add_func ("/vala/wait-async", test_wait_async);

    return Test.run ();
}

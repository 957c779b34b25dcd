package xyz.sigilvault.sunstorm.desktop

import java.io.IOException
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject

/**
 * A client of the appliance simulator's control API (`sunstorm sim appliance --control
 * 127.0.0.1:0`; reference: docs/openapi/appliance-control.yaml, guide: docs/ble-testing.md):
 * read the appliance's screen, press its buttons, add automation rules, change link faults
 * at run time, open bonding mode, assert on its state.
 *
 * ```kotlin
 * Simulators.start(applianceArgs = listOf("--user", "api"), control = true).use { sims ->
 *     val appliance = sims.control()
 *     // … the phone approves a sign request …
 *     val screen = appliance.waitForScreen { it.kind == "sign" }
 *     check(screen.amounts == listOf("0.05 ETH"))
 *     appliance.approve(screenId = screen.id)
 * }
 * ```
 * Every call has a timeout; a refusal is an [ApplianceControlException] with the server's
 * error code. Thread-safe.
 */
class ApplianceControl(
    /** `http://127.0.0.1:PORT`, as the simulator prints after `control API: `. */
    val baseUrl: String,
    private val timeout: Duration = Duration.ofSeconds(20),
) {
    private val http: HttpClient = HttpClient.newBuilder()
        .connectTimeout(Duration.ofSeconds(2))
        .followRedirects(HttpClient.Redirect.NEVER)
        .build()

    init {
        require(baseUrl.startsWith("http://")) { "the control API speaks plain http on loopback: $baseUrl" }
    }

    /** One labelled row of a screen (`key` as on the phone's review: `to`, `value`, …). */
    data class Field(val key: String, val label: String, val value: String)

    /** What the appliance shows for one request waiting for its user. */
    data class Screen(
        val id: Long,
        /** `pair` or `sign`. */
        val kind: String,
        val requestId: String,
        val spName: String,
        /** "Send ETH", "Token transfer", "Pair with Demo SP". */
        val action: String,
        /** CAIP-2 (sign only). */
        val chain: String?,
        val accounts: List<String>,
        /** Amounts as shown ("0.05 ETH"). */
        val amounts: List<String>,
        /** Addresses receiving value or spending rights. */
        val recipients: List<String>,
        val fields: List<Field>,
        /** Warning codes (`blind_signing`, `unlimited_approval`…). */
        val warnings: List<String>,
        val blind: Boolean,
        /** SHA-256 of the payload, hex (sign only). */
        val payloadHash: String?,
        /** The lines a device would show. */
        val text: List<String>,
    ) {
        /** The value of the row with this key, or null. */
        fun field(key: String): String? = fields.firstOrNull { it.key == key }?.value
    }

    /** One entry of the appliance's log (`type`: `screen_shown`, `screen_answered`, `signature_made`…). */
    data class Event(
        val seq: Long,
        val type: String,
        val screen: Screen?,
        val answer: String?,
        val by: String?,
        val requestId: String?,
        val pin: String?,
        val detail: String?,
    )

    /** A page of the log; pass [next] as the following call's `after`. */
    data class EventPage(val events: List<Event>, val next: Long, val truncated: Boolean)

    /** Bonding mode and the PIN shown. */
    data class Bonding(val open: Boolean, val remainingSecs: Long?, val pin: String, val pinFailures: Int)

    /** What a test asserts on. */
    data class State(
        val identity: String,
        val bondedPhones: List<String>,
        val pairIds: List<String>,
        val revokedPairs: List<String>,
        /** Signatures made per sign request id (never above 1). */
        val signatures: Map<String, Int>,
        val totalSignatures: Long,
        /** Fingerprint of each bonded phone's enrolled approval key (null: none), in [bondedPhones] order. */
        val approvalKeys: List<String?> = emptyList(),
        /** Each pair's approval policy by pair id: `always`, `never` or `above:N` (N in the chain's smallest unit). */
        val approvalPolicies: Map<String, String> = emptyMap(),
    )

    /** The screen shown now, or null when the appliance shows nothing. */
    fun screen(): Screen? = get("/screen").optJSONObject("screen")?.let(::screen)

    /** Every screen waiting for an answer, the one shown first. */
    fun waiting(): List<Screen> = get("/screen").getJSONArray("waiting").objects().map(::screen)

    /** Log events after [after], waiting up to [waitMs] (at most 10000) when there is none yet. */
    fun events(after: Long = 0, waitMs: Long = 0): EventPage {
        val o = get("/screen/events?after=$after&wait_ms=${waitMs.coerceIn(0, 10_000)}")
        return EventPage(
            events = o.getJSONArray("events").objects().map { e ->
                Event(
                    seq = e.getLong("seq"),
                    type = e.getString("type"),
                    screen = e.optJSONObject("screen")?.let(::screen),
                    answer = e.optStringOrNull("answer"),
                    by = e.optStringOrNull("by"),
                    requestId = e.optStringOrNull("request_id"),
                    pin = e.optStringOrNull("pin"),
                    detail = e.optStringOrNull("detail"),
                )
            },
            next = o.getLong("next"),
            truncated = o.getBoolean("truncated"),
        )
    }

    /** Waits until a screen for which [predicate] holds is waiting, at most [timeoutMs]. */
    fun waitForScreen(timeoutMs: Long = 30_000, predicate: (Screen) -> Boolean = { true }): Screen {
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        var after = 0L
        while (true) {
            waiting().firstOrNull(predicate)?.let { return it }
            val leftMs = (deadline - System.nanoTime()) / 1_000_000
            if (leftMs <= 0) throw ApplianceControlException(0, "no_matching_screen", "no matching screen within $timeoutMs ms")
            after = events(after, minOf(leftMs, 1_000)).next
        }
    }

    /** Presses approve on the screen [screenId] or of [requestId] (the current one when both are null). */
    fun approve(screenId: Long? = null, requestId: String? = null): Screen =
        screen(post("/screen/approve", press(screenId, requestId)).getJSONObject("screen"))

    /** Presses reject, like [approve]. */
    fun reject(screenId: Long? = null, requestId: String? = null): Screen =
        screen(post("/screen/reject", press(screenId, requestId)).getJSONObject("screen"))

    /**
     * Adds an automation rule: [action] (`approve`, `reject`, `ignore`) after [afterMs] for
     * screens that match every condition given, for [times] screens (no limit when null).
     * Returns its id.
     */
    fun addRule(
        action: String,
        kind: String? = null,
        textContains: String? = null,
        spName: String? = null,
        afterMs: Long = 0,
        times: Int? = null,
    ): Long {
        val match = JSONObject()
        kind?.let { match.put("kind", it) }
        textContains?.let { match.put("text_contains", it) }
        spName?.let { match.put("sp_name", it) }
        val body = JSONObject().put("action", action).put("after_ms", afterMs).put("match", match)
        times?.let { body.put("times", it) }
        return post("/rules", body).getLong("id")
    }

    /** Removes every rule; returns how many there were. */
    fun clearRules(): Int = send("DELETE", "/rules", null).getInt("removed")

    /** Sets the simulated user: `api`, `approve`, `reject`, or `delay` with [delayMs]. */
    fun setUser(mode: String, delayMs: Long? = null) {
        val body = JSONObject().put("mode", mode)
        delayMs?.let { body.put("delay_ms", it) }
        send("PUT", "/user", body)
    }

    /**
     * Replaces the run-time link faults (null: the value the simulator started with);
     * [refuseConnections] makes new connections fail.
     */
    fun setFaults(
        drop: Double? = null,
        duplicate: Double? = null,
        reorder: Double? = null,
        latencyMs: Long? = null,
        refuseConnections: Boolean = false,
    ) {
        val body = JSONObject().put("refuse_connections", refuseConnections)
        drop?.let { body.put("drop", it) }
        duplicate?.let { body.put("duplicate", it) }
        reorder?.let { body.put("reorder", it) }
        latencyMs?.let { body.put("latency_ms", it) }
        send("PUT", "/faults", body)
    }

    /** Connections open now. */
    fun openConnections(): Int = get("/faults").getInt("open_connections")

    /** Drops every open connection now (as a radio link breaking); returns how many. */
    fun disconnect(): Int = post("/faults/disconnect", JSONObject()).getInt("disconnected")

    /** Bonding mode and the PIN shown. */
    fun bonding(): Bonding = bonding(get("/bonding"))

    /** Opens bonding mode for [secs] (the simulator's window when null). */
    fun openBonding(secs: Long? = null): Bonding =
        bonding(post("/bonding/open", JSONObject().also { b -> secs?.let { b.put("secs", it) } }))

    /** Closes bonding mode. */
    fun closeBonding(): Bonding = bonding(post("/bonding/close", JSONObject()))

    /** Bonded phones, pairs, revocations and signatures per request id. */
    fun state(): State {
        val o = get("/state")
        return State(
            identity = o.getString("identity"),
            bondedPhones = o.getJSONArray("bonded_phones").objects().map { it.getString("name") },
            pairIds = o.getJSONArray("pairs").objects().map { it.getString("pair_id") },
            revokedPairs = o.getJSONArray("revoked_pairs").strings(),
            signatures = o.getJSONArray("signatures").objects().associate { it.getString("request_id") to it.getInt("count") },
            totalSignatures = o.getLong("total_signatures"),
            approvalKeys = o.getJSONArray("bonded_phones").objects().map { it.optStringOrNull("approval_key") },
            approvalPolicies = o.getJSONArray("pairs").objects().associate { p ->
                val policy = p.optString("approval_policy", "never")
                p.getString("pair_id") to if (policy == "above") "above:${p.optStringOrNull("approval_above")}" else policy
            },
        )
    }

    /** Back to a fresh appliance with the same keys (nothing bonded, paired or signed). */
    fun reset() {
        post("/reset", JSONObject())
    }

    // ---------------------------------------------------------------------------------

    private fun press(screenId: Long?, requestId: String?): JSONObject = JSONObject().also { b ->
        screenId?.let { b.put("screen_id", it) }
        requestId?.let { b.put("request_id", it) }
    }

    private fun bonding(o: JSONObject) = Bonding(
        open = o.getBoolean("open"),
        remainingSecs = if (o.isNull("remaining_secs")) null else o.getLong("remaining_secs"),
        pin = o.getString("pin"),
        pinFailures = o.getInt("pin_failures"),
    )

    private fun screen(o: JSONObject) = Screen(
        id = o.getLong("id"),
        kind = o.getString("kind"),
        requestId = o.getString("request_id"),
        spName = o.getString("sp_name"),
        action = o.getString("action"),
        chain = o.optStringOrNull("chain"),
        accounts = o.getJSONArray("accounts").strings(),
        amounts = o.getJSONArray("amounts").strings(),
        recipients = o.getJSONArray("recipients").strings(),
        fields = o.getJSONArray("fields").objects().map { Field(it.getString("key"), it.getString("label"), it.getString("value")) },
        warnings = o.getJSONArray("warnings").objects().map { it.getString("code") },
        blind = o.getBoolean("blind"),
        payloadHash = o.optStringOrNull("payload_hash"),
        text = o.getJSONArray("text").strings(),
    )

    private fun get(path: String): JSONObject = send("GET", path, null)

    private fun post(path: String, body: JSONObject): JSONObject = send("POST", path, body)

    private fun send(method: String, path: String, body: JSONObject?): JSONObject {
        val req = HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + path))
            .timeout(timeout)
            .header("accept", "application/json")
        if (body != null) {
            req.header("content-type", "application/json")
            req.method(method, HttpRequest.BodyPublishers.ofString(body.toString()))
        } else {
            req.method(method, HttpRequest.BodyPublishers.noBody())
        }
        val resp = try {
            http.send(req.build(), HttpResponse.BodyHandlers.ofString())
        } catch (e: IOException) {
            throw ApplianceControlException(0, "unreachable", "control API at $baseUrl: $e")
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw ApplianceControlException(0, "interrupted", "interrupted")
        }
        val json = try {
            JSONObject(resp.body())
        } catch (e: JSONException) {
            throw ApplianceControlException(resp.statusCode(), "unexpected", "not JSON: ${resp.body().take(200)}")
        }
        if (resp.statusCode() !in 200..299) {
            val err = json.optJSONObject("error")
            throw ApplianceControlException(
                resp.statusCode(),
                err?.optString("code") ?: "unexpected",
                err?.optString("message") ?: resp.body().take(200),
            )
        }
        return json
    }
}

/** The control API refused a call ([status] 0: no answer), with its stable [code]. */
class ApplianceControlException(val status: Int, val code: String, message: String) :
    RuntimeException("appliance control: $code ($status): $message")

private fun JSONArray.objects(): List<JSONObject> = (0 until length()).map { getJSONObject(it) }

private fun JSONArray.strings(): List<String> = (0 until length()).map { getString(it) }

private fun JSONObject.optStringOrNull(name: String): String? = if (isNull(name)) null else getString(name)

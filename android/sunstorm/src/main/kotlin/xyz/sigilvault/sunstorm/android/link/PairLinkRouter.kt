package xyz.sigilvault.sunstorm.android.link

import xyz.sigilvault.sunstorm.PairLink
import xyz.sigilvault.sunstorm.SunstormException

/** Where a tapped App Link or a scanned QR code takes the user. */
sealed interface LinkRoute {
    /** Open the pair screen for [sessionId]; [prefilledCode] is set in the single-device flow. */
    data class Pair(val sessionId: String, val prefilledCode: String?) : LinkRoute

    /** Not a Sigil pair link: show [reason]; [code] is the core's stable rejection code. */
    data class Refused(val code: String, val reason: String) : LinkRoute

    /** The app was opened without a link (launcher): stay on the home screen. */
    data object NoLink : LinkRoute
}

/**
 * Routes an incoming `ACTION_VIEW` intent or a scanned QR text to a screen. The strict
 * parsing is the core's (`SunstormCore.parseLink`, passed as [parse]): only
 * `https://<accepted host>/pair?session=…[&v=NNNNNN]` is accepted, everything else is
 * refused with the core's reason. The router only adds the intent-level checks: the
 * action, a missing or oversized link.
 *
 * Android-free (the activity passes `intent.action` and `intent.dataString`), so it is
 * tested on the JVM against the real core.
 */
class PairLinkRouter(private val parse: (String) -> PairLink) {
    /** Routes an activity's intent: [action] is `intent.action`, [data] is `intent.dataString`. */
    fun routeIntent(action: String?, data: String?): LinkRoute {
        if (action != ACTION_VIEW || data == null) return LinkRoute.NoLink
        return route(data)
    }

    /** Routes the text of a scanned QR code (the same URL as the App Link). */
    fun routeScan(text: String): LinkRoute = route(text.trim())

    private fun route(text: String): LinkRoute {
        if (text.isEmpty()) return LinkRoute.Refused("empty", "the link is empty")
        if (text.length > MAX_LINK_CHARS) return LinkRoute.Refused("too_long", "the link is too long")
        return try {
            val link = parse(text)
            LinkRoute.Pair(link.sessionId, link.code)
        } catch (e: SunstormException.InvalidLink) {
            LinkRoute.Refused(e.code, e.reason)
        } catch (e: SunstormException) {
            LinkRoute.Refused("unreadable", e.toString())
        }
    }

    /** Limits. */
    companion object {
        /** `Intent.ACTION_VIEW` (a constant, so this class needs no framework). */
        const val ACTION_VIEW = "android.intent.action.VIEW"

        /** Longer texts are refused before reaching the core. */
        const val MAX_LINK_CHARS = 2048
    }
}

package xyz.sigilvault.sunstorm.android.push

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.Context
import android.content.Intent
import xyz.sigilvault.sunstorm.NotificationOutcomeView

/**
 * Posts a verified sign request as a notification on channel [CHANNEL_ID], with "Review",
 * "Approve" and "Reject" actions. None of them approves by itself: each opens [reviewActivity]
 * with the request id and the chosen action ([EXTRA_REQUEST_ID], [EXTRA_ACTION]), and the
 * app's review screen asks for the biometric and the appliance. The notification times out
 * when the request expires. Needs `POST_NOTIFICATIONS` (Android 13+), asked by the app.
 */
class AndroidNotificationPoster(
    private val context: Context,
    private val reviewActivity: Class<*>,
    private val smallIcon: Int,
    private val clock: () -> Long = System::currentTimeMillis,
) : NotificationPoster {
    private val manager = context.getSystemService(NotificationManager::class.java)

    init {
        manager.createNotificationChannel(
            NotificationChannel(CHANNEL_ID, "Signature requests", NotificationManager.IMPORTANCE_HIGH).apply {
                description = "Requests to sign, checked by Sunstorm before they are shown"
            },
        )
    }

    override fun post(shown: NotificationOutcomeView.Show) {
        val timeoutMs = (shown.expiresAt * 1000 - clock()).coerceAtLeast(1)
        val n = Notification.Builder(context, CHANNEL_ID)
            .setSmallIcon(smallIcon)
            .setContentTitle(shown.title)
            .setContentText(shown.body)
            .setStyle(Notification.BigTextStyle().bigText(shown.body))
            .setCategory(Notification.CATEGORY_MESSAGE)
            .setAutoCancel(true)
            .setTimeoutAfter(timeoutMs)
            .setContentIntent(open(shown.requestId, ACTION_REVIEW))
            .addAction(Notification.Action.Builder(null, "Approve", open(shown.requestId, ACTION_APPROVE)).build())
            .addAction(Notification.Action.Builder(null, "Reject", open(shown.requestId, ACTION_REJECT)).build())
            .build()
        manager.notify(shown.requestId, NOTIFICATION_ID, n)
    }

    private fun open(requestId: String, action: String): PendingIntent {
        val intent = Intent(context, reviewActivity)
            .setAction(action)
            .putExtra(EXTRA_REQUEST_ID, requestId)
            .putExtra(EXTRA_ACTION, action)
            .addFlags(Intent.FLAG_ACTIVITY_NEW_TASK or Intent.FLAG_ACTIVITY_CLEAR_TOP)
        return PendingIntent.getActivity(
            context,
            (requestId + action).hashCode(),
            intent,
            PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
        )
    }

    /** Channel, extras and actions the review activity reads. */
    companion object {
        /** The notification channel of sign requests. */
        const val CHANNEL_ID = "sunstorm_sign_requests"

        /** Tag is the request id; one id for all. */
        const val NOTIFICATION_ID = 1

        /** Intent extra: the request to open. */
        const val EXTRA_REQUEST_ID = "xyz.sigilvault.sunstorm.REQUEST_ID"

        /** Intent extra: which action the user picked in the notification. */
        const val EXTRA_ACTION = "xyz.sigilvault.sunstorm.ACTION"

        /** Open the review screen. */
        const val ACTION_REVIEW = "xyz.sigilvault.sunstorm.action.REVIEW"

        /** Open the review screen ready to approve (the biometric and appliance still ask). */
        const val ACTION_APPROVE = "xyz.sigilvault.sunstorm.action.APPROVE"

        /** Open the review screen ready to reject. */
        const val ACTION_REJECT = "xyz.sigilvault.sunstorm.action.REJECT"
    }
}

-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('SCHEDULED', 'LIVE', 'PAUSED', 'ENDED');

-- CreateEnum
CREATE TYPE "ReactionType" AS ENUM ('CLAP', 'FIRE', 'HEART', 'WOW', 'LAUGH');

-- CreateEnum
CREATE TYPE "OfferType" AS ENUM ('EQUITY', 'LOAN', 'ROYALTY');

-- CreateEnum
CREATE TYPE "OfferStatus" AS ENUM ('PENDING', 'ACCEPTED', 'REJECTED', 'COUNTERED', 'WITHDRAWN', 'EXPIRED');

-- AlterTable
ALTER TABLE "Competition" ADD COLUMN     "runoffResult" JSONB;

-- AlterTable
ALTER TABLE "TopicSequence" ADD COLUMN     "stateHash" TEXT;

-- CreateTable
CREATE TABLE "EventSession" (
    "id" TEXT NOT NULL,
    "competitionId" TEXT NOT NULL,
    "status" "SessionStatus" NOT NULL DEFAULT 'SCHEDULED',
    "submissionIds" TEXT[],
    "currentIndex" INTEGER NOT NULL DEFAULT 0,
    "presentationSeconds" INTEGER NOT NULL,
    "timerEndsAt" TIMESTAMP(3),
    "remainingMs" INTEGER,
    "pledgeBudget" INTEGER NOT NULL DEFAULT 1000,
    "startedAt" TIMESTAMP(3),
    "endedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "EventSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ReactionWindow" (
    "sessionId" TEXT NOT NULL,
    "windowStart" TIMESTAMP(3) NOT NULL,
    "windowMs" INTEGER NOT NULL,
    "total" INTEGER NOT NULL,
    "counts" JSONB NOT NULL,
    "heatmap" JSONB NOT NULL,

    CONSTRAINT "ReactionWindow_pkey" PRIMARY KEY ("sessionId","windowStart")
);

-- CreateTable
CREATE TABLE "Offer" (
    "id" TEXT NOT NULL,
    "sessionId" TEXT NOT NULL,
    "submissionId" TEXT NOT NULL,
    "judgeId" TEXT NOT NULL,
    "authorId" TEXT NOT NULL,
    "type" "OfferType" NOT NULL,
    "amount" DOUBLE PRECISION NOT NULL,
    "equityPercentage" DOUBLE PRECISION,
    "interestRatePercent" DOUBLE PRECISION,
    "termMonths" INTEGER,
    "royaltyPercent" DOUBLE PRECISION,
    "conditions" TEXT[],
    "status" "OfferStatus" NOT NULL DEFAULT 'PENDING',
    "counterOfId" TEXT,
    "expiresAt" TIMESTAMP(3),
    "respondedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Offer_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Pledge" (
    "sessionId" TEXT NOT NULL,
    "submissionId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Pledge_pkey" PRIMARY KEY ("sessionId","submissionId","userId")
);

-- CreateIndex
CREATE INDEX "EventSession_competitionId_idx" ON "EventSession"("competitionId");

-- CreateIndex
CREATE UNIQUE INDEX "Offer_counterOfId_key" ON "Offer"("counterOfId");

-- CreateIndex
CREATE INDEX "Offer_submissionId_status_idx" ON "Offer"("submissionId", "status");

-- CreateIndex
CREATE INDEX "Offer_sessionId_idx" ON "Offer"("sessionId");

-- CreateIndex
CREATE INDEX "Offer_status_expiresAt_idx" ON "Offer"("status", "expiresAt");

-- CreateIndex
CREATE INDEX "Pledge_sessionId_userId_idx" ON "Pledge"("sessionId", "userId");

-- CreateIndex
CREATE INDEX "BallotEntry_competitionId_updatedAt_idx" ON "BallotEntry"("competitionId", "updatedAt");

-- AddForeignKey
ALTER TABLE "EventSession" ADD CONSTRAINT "EventSession_competitionId_fkey" FOREIGN KEY ("competitionId") REFERENCES "Competition"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReactionWindow" ADD CONSTRAINT "ReactionWindow_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "EventSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Offer" ADD CONSTRAINT "Offer_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "EventSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Offer" ADD CONSTRAINT "Offer_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Offer" ADD CONSTRAINT "Offer_judgeId_fkey" FOREIGN KEY ("judgeId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Offer" ADD CONSTRAINT "Offer_counterOfId_fkey" FOREIGN KEY ("counterOfId") REFERENCES "Offer"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pledge" ADD CONSTRAINT "Pledge_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "EventSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pledge" ADD CONSTRAINT "Pledge_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Pledge" ADD CONSTRAINT "Pledge_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
